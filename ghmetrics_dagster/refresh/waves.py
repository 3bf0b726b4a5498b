"""Refresh waves: which users the next wave covers, and when a failed user is retried.

Pure helpers (no Dagster, no database) for the login sensor in `defs/users.py`, and the
job name and run tags of a wave, which the CLI's runs (pipeline.create_wave_run) share.

A wave is one Dagster run over a contiguous range of the `users` partitions (Dagster runs
cover one partition or a range, never an arbitrary set). The range is chosen so that at
least half of the users it refreshes asked for it; the others get a real, cheap incremental
refresh, and the pending users left out go into the next wave.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

JOB_NAME = "user_refresh"
USER_TAG = "ghmetrics/user"
TRIGGER_TAG = "ghmetrics/trigger"
WAVE_TAG = "ghmetrics/wave"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def new_wave_id() -> str:
    return uuid.uuid4().hex[:12]


def wave_tags(users: list[str] | tuple[str, ...], trigger: str, wave_id: str | None = None) -> dict[str, str]:
    """The tags of a wave run over the partition range users[0]..users[-1]."""
    tags = {WAVE_TAG: wave_id or new_wave_id(), TRIGGER_TAG: trigger}
    if len(users) == 1:
        tags[USER_TAG] = users[0]
        tags["dagster/partition"] = users[0]
    else:
        tags[RANGE_START_TAG] = users[0]
        tags[RANGE_END_TAG] = users[-1]
    return tags


@dataclass(frozen=True)
class WavePlan:
    first: str
    last: str
    users: tuple[str, ...]  # every user in the range, in partition order
    pending: tuple[str, ...]  # the users in the range who asked for a refresh


def plan_wave(ordered_users: list[str], pending: set[str], max_users: int = 500) -> WavePlan | None:
    """The next wave: the longest range from the first pending user in which the pending users
    are at least half, holding at most `max_users` users; None when nobody is pending."""
    positions = [i for i, login in enumerate(ordered_users) if login in pending]
    if not positions:
        return None
    start = positions[0]
    end = start
    for count, position in enumerate(positions, start=1):
        span = position - start + 1
        if span > max_users:
            break
        if 2 * count >= span:
            end = position
    users = tuple(ordered_users[start : end + 1])
    return WavePlan(users[0], users[-1], users, tuple(u for u in users if u in pending))


def hold_for_more_logins(
    logins_at: list[dt.datetime], now: dt.datetime, settle_s: float = 2.0, max_wait_s: float = 10.0
) -> str | None:
    """Why the next wave should wait a moment, or None to start it now. While a burst is
    arriving (two or more logins within the last `settle_s`) the wave waits for it to settle,
    so the burst shares one wave; a lone login never waits, and nobody waits over `max_wait_s`."""
    recent = [at for at in logins_at if (now - at).total_seconds() < settle_s]
    if len(recent) >= 2 and (now - min(logins_at)).total_seconds() < max_wait_s:
        return f"waiting for more logins before the next wave ({len(logins_at)} user(s) so far)"
    return None


def retry_delay(failures: int, base_s: float = 60.0, cap_s: float = 3600.0) -> dt.timedelta:
    """How long after its `failures`-th failed wave a user waits before the next try."""
    if failures <= 0:
        return dt.timedelta(0)
    return dt.timedelta(seconds=min(cap_s, base_s * 2 ** (failures - 1)))


def describe_age(seconds: float) -> str:
    minutes = seconds / 60
    return f"{seconds:.0f} s" if minutes < 1 else f"{minutes:.0f} min"
