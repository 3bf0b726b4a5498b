"""Errors of the GitHub client: one line each, saying what went wrong and what to do.

Messages never contain a token; a token is named only by its fingerprint
(`client.token_fingerprint`).
"""

from __future__ import annotations

from ghmetrics_dagster.core.redact import redact


class GitHubError(RuntimeError):
    """Base class of everything the client raises. Anything shaped like a credential is masked
    here, where every message is built; the client also masks its own tokens whatever their shape."""

    def __init__(self, message: str = "", *args):
        super().__init__(redact(str(message)), *args)


class BadCredentials(GitHubError):
    """Every configured token was rejected (401)."""


class Forbidden(GitHubError):
    """The token may not read this resource (403 without a rate-limit cause)."""


class NotFound(GitHubError):
    """A REST resource does not exist or the token cannot see it (404)."""


class RepositoryNotFound(NotFound):
    """The repository does not exist or no token can see it."""


class RepositoryUnavailable(GitHubError):
    """The repository exists but cannot be read now (empty, blocked, 409/451)."""


class RateLimitExhausted(GitHubError):
    """Every token is out of rate limit for longer than the client is allowed to wait."""


class MalformedResponse(GitHubError):
    """GitHub kept answering with something that is not the JSON it should be."""


class ServerError(GitHubError):
    """GitHub kept failing (5xx, timeouts, connection errors) after every retry."""


class GraphQLError(GitHubError):
    """A GraphQL query returned errors that are not about rate limits or missing objects."""

    def __init__(self, message: str, errors: list[dict] | None = None):
        super().__init__(message)
        self.errors = errors or []  # already redacted by the client (graphql_error)


class InvalidRepositoryName(GitHubError):
    """A repository name is not `owner/name`."""
