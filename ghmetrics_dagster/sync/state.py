"""raw.sync_state: per repository and stream, the watermark, the ETag and the resume cursor.

The cursor column holds JSON: `{"after": <GraphQL endCursor>, "acc": {...}}` or
`{"page": <next REST page>, "acc": {...}}`, where `acc` is what the pass has folded so far
(`max`: the newest time read, `open`: the oldest unfinished object, `active`: each
environment's active deployment). `Cursor` reads and writes exactly that shape, so state
stored by an earlier version resumes.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from ghmetrics_dagster.github.client import parse_time
from ghmetrics_dagster.sync.rows import STREAM_TABLES


@dataclass(frozen=True)
class Cursor:
    """Where an interrupted pass resumes, and what it has folded so far."""

    after: str | None = None  # GraphQL: the endCursor of the last committed page
    page: int | None = None  # REST: the next page number
    newest: dt.datetime | None = None  # the newest time read (the watermark candidate)
    oldest_open: dt.datetime | None = None  # the oldest object not final yet (re-read from there)
    active: dict[str, dt.datetime] = field(default_factory=dict)  # environment -> its active deployment

    @classmethod
    def from_json(cls, text: str | None) -> Cursor | None:
        if not text:
            return None
        stored = json.loads(text)
        acc = stored.get("acc") or {}
        return cls(
            after=stored.get("after"),
            page=stored.get("page"),
            newest=parse_time(acc.get("max")),
            oldest_open=parse_time(acc.get("open")),
            active={env: parse_time(created) for env, created in (acc.get("active") or {}).items()},
        )

    def to_json(self) -> str:
        acc = {}
        if self.newest is not None:
            acc["max"] = self.newest.isoformat()
        if self.oldest_open is not None:
            acc["open"] = self.oldest_open.isoformat()
        if self.active:
            acc["active"] = {env: created.isoformat() for env, created in self.active.items()}
        position = {"page": self.page} if self.page is not None else {"after": self.after}
        return json.dumps({**position, "acc": acc})


@dataclass(frozen=True)
class StreamState:
    watermark: dt.datetime | None = None
    cursor: Cursor | None = None
    etag: str | None = None
    etag_token_fingerprint: str | None = None
    last_success_at: dt.datetime | None = None

    @property
    def complete(self) -> bool:
        """The last pass finished (nothing to resume) and one has succeeded."""
        return self.cursor is None and self.last_success_at is not None


def load_state(cur, repo: str, stream: str) -> StreamState:
    cur.execute(
        "select watermark, cursor, etag, etag_token_fingerprint, last_success_at from raw.sync_state"
        " where repo_full_name = %s and stream = %s",
        (repo, stream),
    )
    row = cur.fetchone()
    if row is None:
        return StreamState()
    watermark, cursor, etag, fingerprint, last_success_at = row
    return StreamState(watermark, Cursor.from_json(cursor), etag, fingerprint, last_success_at)


def save_state(cur, repo: str, stream: str, *, rows: int = 0, stored: bool = False, **values) -> None:
    """Upserts the given columns of raw.sync_state (`cursor` as `Cursor.to_json()` or None).
    With `stored`, rows_total becomes the number of rows the stream's tables hold for the
    repository (what a pass leaves behind), not a sum of rows written, which counts re-reads."""
    columns = ["repo_full_name", "stream", *values, "rows_total", "updated_at"]
    placeholders = ", ".join(["%s"] * (len(columns) - 1) + ["now()"])
    updates = ", ".join(f"{c} = excluded.{c}" for c in values)
    total = "excluded.rows_total" if stored else "raw.sync_state.rows_total + excluded.rows_total"
    sql = (
        f"insert into raw.sync_state ({', '.join(columns)}) values ({placeholders}) "
        f"on conflict (repo_full_name, stream) do update set "
        f"{updates + ', ' if updates else ''}rows_total = {total}, updated_at = now()"
    )
    if stored:
        counts = " + ".join(f"(select count(*) from raw.{t} where repo_full_name = %s)" for t in STREAM_TABLES[stream])
        cur.execute(f"select {counts}", [repo] * len(STREAM_TABLES[stream]))
        rows = cur.fetchone()[0]
    cur.execute(sql, (repo, stream, *values.values(), rows))


def never_back(old: dt.datetime | None, new: dt.datetime) -> dt.datetime:
    """A watermark moves forward only: a pass that read nothing new must not re-apply the
    look-back to a watermark that already includes it (each empty page cost 7 more days)."""
    return max(old, new) if old is not None else new
