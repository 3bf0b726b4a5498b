"""Page fetchers: the one thing that differs between a GraphQL connection and a REST listing
for the sync loop (loop.py), behind one protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ghmetrics_dagster.github import errors, validate
from ghmetrics_dagster.github.client import GitHubClient, PageSize, RestResponse
from ghmetrics_dagster.sync.state import Cursor

_LISTING = {"nodes": "list", "pageInfo": ({"hasNextPage": "bool", "endCursor": "str?"}, False)}


@dataclass
class Page:
    nodes: list[dict]  # newest first, null items left out
    has_next: bool
    # Where to resume once this page is committed: a GraphQL endCursor or a REST page number.
    resume_after: str | None = None
    resume_page: int | None = None


class PageFetcher(Protocol):
    def fetch(self, cursor: Cursor) -> Page:
        """The page after the one `cursor` was committed with (the first page for a new cursor)."""


class GraphQLPages:
    """A repository's connection (`repository { <connection>(after: $after) }`), `size` per page."""

    def __init__(self, client: GitHubClient, repo: str, query: str, connection: str, size: PageSize,
                 variables: dict):
        self.client = client
        self.repo = repo
        self.query = query
        self.connection = connection
        self.size = size
        self.variables = variables

    def fetch(self, cursor: Cursor) -> Page:
        data = self.client.graphql(self.query, {**self.variables, "after": cursor.after}, page=self.size)
        repository = data.get("repository")
        if repository is None:
            raise errors.RepositoryNotFound(f"repository {self.repo} is gone or the token lost access to it")
        listing = repository.get(self.connection) if isinstance(repository, dict) else None
        if validate.problem(_LISTING, listing):
            raise errors.MalformedResponse(f"GitHub's {self.connection} page of {self.repo} is malformed; try again later")
        info = listing["pageInfo"]
        return Page([n for n in listing["nodes"] if n], info["hasNextPage"], resume_after=info["endCursor"])


class RestPages:
    """A REST listing (`{"total_count": n, <key>: [...]}`), 100 per page, numbered pages.

    `first` is the answer to the conditional request for page 1 (the same path and page size),
    reused rather than asked again."""

    PER_PAGE = 100

    def __init__(self, client: GitHubClient, repo: str, path: str, key: str, what: str,
                 first: RestResponse | None):
        self.client = client
        self.repo = repo
        self.path = path
        self.key = key
        self.what = what
        self._first = first if first is not None and not first.not_modified else None

    def fetch(self, cursor: Cursor) -> Page:
        number = cursor.page or 1
        response, self._first = (self._first if number == 1 else None), None
        if response is None:
            response = self.client.rest(self.path, {"per_page": self.PER_PAGE, "page": number})
        listing = response.data.get(self.key) if isinstance(response.data, dict) else None
        if not isinstance(listing, list):
            raise errors.MalformedResponse(f"GitHub's {self.what} page of {self.repo} is malformed; try again later")
        nodes = [n for n in listing if n]
        total_count = response.data.get("total_count")
        more = response.next_url is not None or (isinstance(total_count, int) and total_count > number * self.PER_PAGE)
        return Page(nodes, more and len(nodes) >= self.PER_PAGE, resume_page=number + 1)
