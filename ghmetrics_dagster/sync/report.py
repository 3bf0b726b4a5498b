"""What a sync did: per stream, per repository and in total (Dagster metadata, the CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ghmetrics_dagster.github.client import Stats
from ghmetrics_dagster.sync.rows import STREAM_TABLES


@dataclass
class StreamResult:
    stream: str
    status: str = "pending"  # ok, unchanged, failed, postponed (rate limited past the caps), skipped
    rows: dict[str, int] = field(default_factory=dict)
    pages: int = 0
    error: str | None = None
    stats: Stats = field(default_factory=Stats)
    duration_s: float = 0.0
    quarantined: int = 0  # malformed objects set aside in raw.quarantine


@dataclass
class RepositoryResult:
    repo: str
    streams: dict[str, StreamResult] = field(default_factory=dict)
    error: str | None = None
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(s.status not in ("failed", "postponed") for s in self.streams.values())

    @property
    def postponed(self) -> bool:
        """Rate limited past the client's waiting caps: nothing is wrong with it, it waits for the next run."""
        return any(s.status == "postponed" for s in self.streams.values()) or bool(
            self.error and self.error.startswith("postponed")
        )

    @property
    def errors(self) -> list[str]:
        found = [self.error] if self.error else []
        found += [f"{s.stream}: {s.error}" for s in self.streams.values() if s.error]
        return found


@dataclass
class SyncReport:
    repositories: list[RepositoryResult]
    stats: Stats
    duration_s: float
    rate_limit_remaining: dict[str, int | None]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.repositories)

    @property
    def failed(self) -> list[RepositoryResult]:
        return [r for r in self.repositories if not r.ok]

    def rows_upserted(self) -> dict[str, int]:
        totals = {table: 0 for tables in STREAM_TABLES.values() for table in tables}
        for repo in self.repositories:
            for stream in repo.streams.values():
                for table, count in stream.rows.items():
                    totals[table] += count
        return totals

    def metadata(self) -> dict:
        """Flat, JSON-friendly numbers for Dagster metadata and the CLI (no secrets)."""
        return {
            "repositories": len(self.repositories),
            "repositories_failed": len(self.failed),
            "repositories_postponed": sorted(r.repo for r in self.repositories if r.postponed),
            "rows_upserted": self.rows_upserted(),
            "rows_quarantined": sum(s.quarantined for r in self.repositories for s in r.streams.values()),
            **self.stats.as_dict(),
            "rate_limit_remaining": self.rate_limit_remaining,
            "duration_s": round(self.duration_s, 3),
            "errors": {r.repo: "; ".join(r.errors) for r in self.failed},
        }

    def summary(self) -> str:
        rows = sum(self.rows_upserted().values())
        postponed = sum(r.postponed for r in self.repositories)
        return (
            f"{len(self.repositories) - len(self.failed)}/{len(self.repositories)} repositories synced, "
            + (f"{postponed} postponed (rate limits), " if postponed else "")
            + f"{rows} rows upserted, {self.stats.requests} requests, {self.stats.graphql_points} GraphQL points, "
            f"{self.stats.rest_units} REST units, {self.stats.not_modified} not modified, "
            f"{self.stats.retries} retries in {self.duration_s:.1f} s"
        )


def add_stats(total: Stats, part: Stats) -> None:
    for name in (
        "rest_requests", "rest_units", "graphql_requests", "graphql_points", "not_modified",
        "retries", "secondary_limit_waits", "page_size_reductions", "rate_limit_waits_s",
    ):
        setattr(total, name, getattr(total, name) + getattr(part, name))
