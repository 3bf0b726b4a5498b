"""The one sync loop: a repository's stream read newest first, page by page, each page
committed together with its resume cursor; the stream (streams.py) says what to read and how
to shape it, a page fetcher (pages.py) how to get the next page."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.github import errors, validate
from ghmetrics_dagster.github.client import GitHubClient, RestResponse, parse_time
from ghmetrics_dagster.sync.pages import PageFetcher
from ghmetrics_dagster.sync.report import StreamResult
from ghmetrics_dagster.sync.rows import quarantine_rows, write_rows
from ghmetrics_dagster.sync.state import Cursor, StreamState, load_state, never_back, save_state

log = logging.getLogger("ghmetrics.sync")

Progress = Callable[[str], None]


@dataclass
class Options:
    overlap: dt.timedelta = dt.timedelta(minutes=5)
    # Deployments and workflow runs created within this window are re-read whenever their
    # listing changed: statuses and re-runs change objects that are not the newest.
    lookback: dt.timedelta = dt.timedelta(days=7)
    max_workers: int = 8


@dataclass
class Repo:
    full_name: str  # as GitHub spells it
    owner: str
    name: str
    node: dict  # its answer to the repositories query


class StreamJob:
    """One stream of one repository being synced: where it reports and what it counted."""

    def __init__(self, client: GitHubClient, repo: Repo, stream: str, progress: Progress | None, options: Options):
        self.client = client
        self.repo = repo
        self.stream = stream
        self.progress = progress
        self.options = options
        self.result = StreamResult(stream)

    def say(self, message: str) -> None:
        if self.progress is not None:
            try:
                self.progress(f"{self.repo.full_name} {self.stream}: {message}")
            except Exception:  # a broken progress bar must not break ingestion
                log.exception("progress callback failed")

    def add_rows(self, written: dict[str, int]) -> int:
        """Counts the rows written; returns those of the stream's own tables (not quarantined)."""
        self.result.quarantined += written.pop("quarantine", 0)
        for table, count in written.items():
            self.result.rows[table] = self.result.rows.get(table, 0) + count
        return sum(written.values())

    def quarantine(self, kind: str, objects: list) -> tuple[list[dict], list[tuple]]:
        """(valid objects, quarantine rows) of `objects`, logging each one set aside."""
        good, bad = validate.split(kind, objects)
        for key, reason, _ in bad:
            log.warning("%s %s: %s %s quarantined: %s", self.repo.full_name, self.stream, kind, key, reason)
        return good, quarantine_rows(self.repo.full_name, kind, bad)


class Stream:
    """One kind of object, read per repository by `run_pass`. One instance serves every
    repository of a sync (its adaptive page size is shared), so it keeps no per-repository state."""

    name: str
    time_field: str  # the listing is ordered by it, newest first; an object older than `since` ends the pass

    def nothing_new(self, job: StreamJob, state: StreamState) -> bool:
        """Known to be unchanged without a request; asked only after a complete pass."""
        return False

    def conditional_request(self, repo: Repo) -> tuple[str, dict] | None:
        """(path, params) of a small REST listing asked with If-None-Match: a 304 skips the pass."""
        return None

    def since(self, job: StreamJob, state: StreamState) -> dt.datetime | None:
        """The cutoff: objects older than this are not read again."""
        return state.watermark - job.options.overlap if state.watermark else None

    def pages(self, job: StreamJob, since: dt.datetime | None, checked: RestResponse | None) -> PageFetcher:
        """The fetcher of the pass; `checked` is the answer to `conditional_request`."""
        raise NotImplementedError

    def rows(self, job: StreamJob, conn, nodes: list[dict]) -> dict[str, list[tuple]]:
        """The rows of a page's valid nodes, by table ("quarantine" for more set aside)."""
        raise NotImplementedError

    def fold(self, cursor: Cursor, nodes: list[dict]) -> Cursor:
        """The cursor with the page's nodes folded in (the watermark candidates)."""
        return newest(cursor, nodes, self.time_field)

    def watermark(self, job: StreamJob, cursor: Cursor, state: StreamState) -> dt.datetime | None:
        """The watermark a complete pass leaves, from what it folded."""
        return newer_watermark(cursor, state)

    def page_message(self, kept: list[dict], written: int) -> str:
        return f"{len(kept)} objects, {written} rows"


def newest(cursor: Cursor, nodes: list[dict], time_field: str) -> Cursor:
    times = [parse_time(n[time_field]) for n in nodes if n.get(time_field)]
    if cursor.newest is not None:
        times.append(cursor.newest)
    return replace(cursor, newest=max(times)) if times else cursor


def newer_watermark(cursor: Cursor, state: StreamState) -> dt.datetime | None:
    if cursor.newest is None:
        return state.watermark
    return max(cursor.newest, state.watermark) if state.watermark else cursor.newest


def _mark_unchanged(job: StreamJob, conn, how: str) -> None:
    with conn.cursor() as cur:
        save_state(cur, job.repo.full_name, job.stream, last_success_at=dt.datetime.now(dt.UTC), last_error=None)
    conn.commit()
    job.result.status = "unchanged"
    job.say(how)


def run_pass(stream: Stream, job: StreamJob, conn) -> None:
    """Reads the stream of the repository from its cursor (or the newest object) back to the
    cutoff; the watermark and ETag advance only with the last page."""
    repo = job.repo.full_name
    with conn.cursor() as cur:
        state = load_state(cur, repo, stream.name)
    conn.commit()
    if state.complete and stream.nothing_new(job, state):
        _mark_unchanged(job, conn, "unchanged")
        return
    checked = None
    request = stream.conditional_request(job.repo)
    if request is not None:
        path, params = request
        checked = job.client.rest(path, params, etag=state.etag, etag_fingerprint=state.etag_token_fingerprint)
        if checked.not_modified and state.complete:
            _mark_unchanged(job, conn, "unchanged (304)")
            return
    cursor = state.cursor or Cursor()
    since = stream.since(job, state)
    fetcher = stream.pages(job, since, checked)
    while True:
        page = fetcher.fetch(cursor)
        nodes, quarantined = job.quarantine(stream.name, page.nodes)
        kept = [n for n in nodes if since is None or parse_time(n[stream.time_field]) >= since]
        # A page cut short by quarantine still ends the pass only on an old object or the last page.
        done = len(kept) < len(nodes) or not page.has_next
        rows = stream.rows(job, conn, kept)
        rows["quarantine"] = rows.get("quarantine", []) + quarantined
        cursor = stream.fold(cursor, kept)
        job.result.pages += 1
        with conn.cursor() as cur:
            written = job.add_rows(write_rows(cur, rows))
            if done:
                values = {"cursor": None, "last_success_at": dt.datetime.now(dt.UTC), "last_error": None}
                watermark = stream.watermark(job, cursor, state)
                if watermark is not None:
                    values["watermark"] = never_back(state.watermark, watermark)
                if checked is not None and not checked.not_modified:
                    values["etag"] = checked.etag
                    values["etag_token_fingerprint"] = checked.token_fingerprint
                save_state(cur, repo, stream.name, stored=True, **values)
            else:
                cursor = replace(cursor, after=page.resume_after, page=page.resume_page)
                save_state(cur, repo, stream.name, rows=written, cursor=cursor.to_json())
        conn.commit()
        job.say(f"page {job.result.pages}: {stream.page_message(kept, written)}")
        if done:
            break
    job.result.status = "ok"


def one_line(exc: BaseException, client: GitHubClient) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if not isinstance(exc, errors.GitHubError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return client.redact(text)[:500]


def run_stream(url: str, client: GitHubClient, repo: Repo, stream: Stream, progress: Progress | None,
               options: Options) -> StreamResult:
    """One stream of one repository; its failure is recorded, never raised."""
    job = StreamJob(client, repo, stream.name, progress, options)
    started = time.monotonic()
    with client.scope() as stats:
        try:
            with warehouse.connect(url) as conn:
                try:
                    run_pass(stream, job, conn)
                except Exception as exc:
                    conn.rollback()
                    postponed = isinstance(exc, errors.RateLimitExhausted)
                    job.result.status = "postponed" if postponed else "failed"
                    job.result.error = ("postponed: " if postponed else "") + one_line(exc, client)
                    with conn.cursor() as cur:
                        save_state(cur, repo.full_name, stream.name, last_error=job.result.error)
                    conn.commit()
        except Exception as exc:  # the warehouse itself failed
            job.result.status = "failed"
            job.result.error = job.result.error or one_line(exc, client)
    job.result.stats = stats
    job.result.duration_s = time.monotonic() - started
    if job.result.error:
        log.warning("%s %s failed: %s", repo.full_name, stream.name, job.result.error)
        job.say(f"failed: {job.result.error}")
    return job.result
