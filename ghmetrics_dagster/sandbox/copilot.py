"""GitHub Copilot usage metrics reports of the synthetic organisation (docs/contracts.md,
"Copilot usage metrics").

Everything is a pure function of the organisation (its seed, people, pull requests and clock):
the same organisation gives the same reports. Adoption follows a curve: each person adopts
Copilot on a day of their own, few early and more later (`_adoption_day`), and some never do;
once adopted they are active on most working days, more so as they get used to it.

Reports exist for every day from the day of the organisation's first pull request through
yesterday (GitHub processes a day once it is over). The organisation report holds one record
per day; the users report one record per person active that day.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import random
import statistics

from ghmetrics_dagster.sandbox import model

ADOPTION_SPAN_DAYS = 182  # adoption days spread over this many days after the first report
NEVER_ADOPT_SHARE = 0.2
IDES = ("vscode", "jetbrains", "visualstudio")
LANGUAGES = ("python", "typescript", "go", "java", "sql")
MODELS = ("gpt-4.1", "claude-sonnet-4", "gemini-2.5-pro")
# Pull requests GitHub would count as created or reviewed by Copilot: drawn per pull request
# with a chance that grows with the share of people who adopted Copilot.
CREATED_BY_COPILOT_AT_FULL_ADOPTION = 0.2
REVIEWED_BY_COPILOT_AT_FULL_ADOPTION = 0.5
COUNTERS = ("user_initiated_interaction_count", "code_generation_activity_count", "code_acceptance_activity_count",
            "loc_suggested_to_add_sum", "loc_suggested_to_delete_sum", "loc_added_sum", "loc_deleted_sum")


def _rng(*parts: object) -> random.Random:
    return random.Random(hashlib.sha256(":".join(map(str, parts)).encode()).digest())


def _draw(*parts: object) -> float:
    return _rng(*parts).random()


def first_report_day(org: model.Organization) -> dt.date:
    created = [pr.created_at for repo in org.repositories for pr in repo.pull_requests]
    return min(created).date() if created else org.now.date() - dt.timedelta(days=28)


def last_report_day(org: model.Organization) -> dt.date:
    return org.now.date() - dt.timedelta(days=1)


def has_report(org: model.Organization, day: dt.date) -> bool:
    return first_report_day(org) <= day <= last_report_day(org)


def organization_id(org: model.Organization) -> str:
    return str(int(hashlib.sha256(f"org:{org.login}".encode()).hexdigest()[:8], 16))


def people(org: model.Organization) -> list[model.User]:
    return sorted((u for u in org.users.values() if not u.is_bot), key=lambda u: u.login)


def _adoption_day(seed: int, login: str, first_day: dt.date) -> dt.date | None:
    rng = _rng(seed, "copilot-adoption", login)
    if rng.random() < NEVER_ADOPT_SHARE:
        return None
    # sqrt of a uniform draw: the density grows over the span, so adopters are few early.
    return first_day + dt.timedelta(days=int(ADOPTION_SPAN_DAYS * rng.random() ** 0.5))


@functools.lru_cache(maxsize=65536)
def _user_day(seed: int, login: str, user_id: int, first_day: dt.date, day: dt.date) -> dict | None:
    """One person's record for one day (GitHub's users report line), None when inactive."""
    adopted = _adoption_day(seed, login, first_day)
    if adopted is None or day < adopted or day.weekday() >= 5:
        return None
    maturity = min(1.0, (day - adopted).days / 60)
    rng = _rng(seed, "copilot-day", login, day.isoformat())
    if rng.random() > 0.55 + 0.35 * maturity:
        return None
    person = _rng(seed, "copilot-person", login)
    ide = person.choice(IDES)
    language = person.choice(LANGUAGES)
    model_name = person.choice(MODELS)

    generated = rng.randint(3, 40)
    accepted = round(generated * rng.uniform(0.2, 0.45))
    features = [{
        "feature": "code_completion", "user_initiated_interaction_count": 0,
        "code_generation_activity_count": generated, "code_acceptance_activity_count": accepted,
        "loc_suggested_to_add_sum": generated * rng.randint(2, 8), "loc_suggested_to_delete_sum": 0,
        "loc_added_sum": accepted * rng.randint(2, 6), "loc_deleted_sum": 0,
    }]
    used_chat = rng.random() < 0.45 + 0.3 * maturity
    used_agent = used_chat and rng.random() < 0.1 + 0.4 * maturity
    if used_chat:
        prompts = rng.randint(1, 12)
        blocks = prompts + rng.randint(0, prompts)
        applied = rng.randint(0, blocks)
        features.append({
            "feature": "chat_panel_ask_mode", "user_initiated_interaction_count": prompts,
            "code_generation_activity_count": blocks, "code_acceptance_activity_count": applied,
            "loc_suggested_to_add_sum": blocks * rng.randint(4, 15), "loc_suggested_to_delete_sum": 0,
            "loc_added_sum": applied * rng.randint(3, 12), "loc_deleted_sum": 0,
        })
    if used_agent:
        prompts = rng.randint(1, 6)
        features.append({
            "feature": "chat_panel_agent_mode", "user_initiated_interaction_count": prompts,
            "code_generation_activity_count": 0, "code_acceptance_activity_count": 0,
            "loc_suggested_to_add_sum": 0, "loc_suggested_to_delete_sum": 0, "loc_added_sum": 0, "loc_deleted_sum": 0,
        })
        features.append({
            "feature": "agent_edit", "user_initiated_interaction_count": 0,
            "code_generation_activity_count": 0, "code_acceptance_activity_count": 0,
            "loc_suggested_to_add_sum": 0, "loc_suggested_to_delete_sum": 0,
            "loc_added_sum": prompts * rng.randint(10, 60), "loc_deleted_sum": prompts * rng.randint(0, 20),
        })
    totals = {name: sum(f[name] for f in features) for name in COUNTERS}
    chat_features = [f for f in features if f["feature"] != "code_completion"]
    return {
        "day": day.isoformat(), "user_id": user_id, "user_login": login, **totals,
        "totals_by_ide": [{"ide": ide, **totals}],
        "totals_by_feature": features,
        "totals_by_language_feature": [{"language": language, **{k: v for k, v in f.items() if k != "user_initiated_interaction_count"}}
                                       for f in features],
        "totals_by_model_feature": [{"model": model_name, **f} for f in chat_features],
        "totals_by_language_model": [
            {"language": language, "model": model_name, **{k: sum(f[k] for f in chat_features) for k in COUNTERS if k != "user_initiated_interaction_count"}}
        ] if chat_features else [],
        "used_chat": used_chat, "used_agent": used_agent, "used_cli": False,
    }


def user_days(org: model.Organization, day: dt.date) -> list[dict]:
    """The users report of `day`: one record per person active that day, by login."""
    first_day = first_report_day(org)
    records = [_user_day(org.seed, u.login, u.database_id, first_day, day) for u in people(org)]
    out = []
    for record in records:
        if record is not None:
            out.append({**record, "organization_id": organization_id(org)})
    return out


def _sum_breakdown(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    merged: dict[tuple, dict] = {}
    for row in rows:
        key = tuple(row[k] for k in keys)
        target = merged.setdefault(key, {k: row[k] for k in keys})
        for name in COUNTERS:
            if name in row:
                target[name] = target.get(name, 0) + row[name]
    return [merged[k] for k in sorted(merged)]


def _active_between(org: model.Organization, start: dt.date, end: dt.date, flag: str | None = None) -> int:
    """People active on at least one day of [start, end] (with `flag` true that day, if given)."""
    first_day = first_report_day(org)
    active = set()
    day = max(start, first_day)
    while day <= end:
        for u in people(org):
            record = _user_day(org.seed, u.login, u.database_id, first_day, day)
            if record is not None and (flag is None or record[flag]):
                active.add(u.login)
        day += dt.timedelta(days=1)
    return len(active)


def _pull_requests(org: model.Organization, day: dt.date) -> dict:
    repos = [r for r in org.repositories if r.owner == org.login]
    first_day = first_report_day(org)
    humans = people(org)
    adopted = sum(1 for u in humans if (a := _adoption_day(org.seed, u.login, first_day)) is not None and a <= day)
    share = adopted / len(humans) if humans else 0.0
    created = [pr for r in repos for pr in r.pull_requests if pr.created_at.date() == day]
    merged = [pr for r in repos for pr in r.pull_requests if pr.merged_at is not None and pr.merged_at.date() == day]
    reviewed = [pr for r in repos for pr in r.pull_requests
                if any(rv.submitted_at is not None and rv.submitted_at.date() == day for rv in pr.reviews)]

    def by_copilot(pr: model.PullRequest, what: str, chance: float) -> bool:
        return _draw(org.seed, "copilot-pr", what, pr.node_id) < chance * share

    created_by_copilot = {pr.node_id for r in repos for pr in r.pull_requests
                          if by_copilot(pr, "created", CREATED_BY_COPILOT_AT_FULL_ADOPTION)}
    reviewed_by_copilot = [pr for pr in reviewed if by_copilot(pr, f"reviewed:{day}", REVIEWED_BY_COPILOT_AT_FULL_ADOPTION)]
    suggestions = sum(_rng(org.seed, "copilot-suggestions", pr.node_id, day).randint(0, 4) for pr in reviewed_by_copilot)
    applied = round(suggestions * 0.3)
    minutes = [(pr.merged_at - pr.created_at).total_seconds() / 60 for pr in merged]
    return {
        "total_created": len(created),
        "total_reviewed": len(reviewed),
        "total_merged": len(merged),
        "median_minutes_to_merge": round(statistics.median(minutes), 1) if minutes else None,
        "total_created_by_copilot": sum(1 for pr in created if pr.node_id in created_by_copilot),
        "total_reviewed_by_copilot": len(reviewed_by_copilot),
        "total_merged_created_by_copilot": sum(1 for pr in merged if pr.node_id in created_by_copilot),
        "total_suggestions": suggestions + len(reviewed),
        "total_applied_suggestions": applied + len(reviewed) // 3,
        "total_copilot_suggestions": suggestions,
        "total_copilot_applied_suggestions": applied,
    }


def organization_day(org: model.Organization, day: dt.date) -> dict:
    """The organisation's totals of `day` (one element of the report's `day_totals`)."""
    users = user_days(org, day)
    totals = {name: sum(u[name] for u in users) for name in COUNTERS}
    week_start, month_start = day - dt.timedelta(days=6), day - dt.timedelta(days=27)
    return {
        "day": day.isoformat(), "organization_id": organization_id(org),
        "daily_active_users": len(users),
        "weekly_active_users": _active_between(org, week_start, day),
        "monthly_active_users": _active_between(org, month_start, day),
        "monthly_active_chat_users": _active_between(org, month_start, day, "used_chat"),
        "monthly_active_agent_users": _active_between(org, month_start, day, "used_agent"),
        **totals,
        "totals_by_ide": _sum_breakdown([r for u in users for r in u["totals_by_ide"]], ("ide",)),
        "totals_by_feature": _sum_breakdown([r for u in users for r in u["totals_by_feature"]], ("feature",)),
        "totals_by_language_feature": _sum_breakdown(
            [r for u in users for r in u["totals_by_language_feature"]], ("language", "feature")),
        "totals_by_model_feature": _sum_breakdown([r for u in users for r in u["totals_by_model_feature"]], ("model", "feature")),
        "totals_by_language_model": _sum_breakdown(
            [r for u in users for r in u["totals_by_language_model"]], ("language", "model")),
        "pull_requests": _pull_requests(org, day),
    }


# --- the REST reports and their signed download links ------------------------------------

DOWNLOAD_PREFIX = "/_reports/copilot/"
LINK_LIFETIME = dt.timedelta(hours=1)  # on the organisation's clock: advance() expires links
USERS_PER_FILE = 100  # a users report longer than this is split into several files, as GitHub's are
REPORTS = ("organization-1-day", "organization-28-day", "users-1-day", "users-28-day")


def _signature(org: model.Organization, base: str, path: str, expires: int) -> str:
    key = hashlib.sha256(f"copilot-reports:{org.seed}:{base}".encode()).digest()
    return hashlib.sha256(key + f"{path}?expires={expires}".encode()).hexdigest()


def report_window(org: model.Organization, report: str, day: dt.date | None) -> tuple[dt.date, dt.date]:
    """The days a report covers: the one day, or the 28 days ending yesterday."""
    if report.endswith("-1-day"):
        return day, day
    end = last_report_day(org)
    return end - dt.timedelta(days=27), end


def report_lines(org: model.Organization, report: str, start: dt.date, end: dt.date) -> list[dict]:
    days = []
    day = max(start, first_report_day(org))
    while day <= min(end, last_report_day(org)):
        days.append(day)
        day += dt.timedelta(days=1)
    if report.startswith("users-"):
        return [record for d in days for record in user_days(org, d)]
    if report == "organization-1-day":
        return [organization_day(org, d) for d in days]
    return [{"organization_id": organization_id(org), "report_start_day": start.isoformat(),
             "report_end_day": end.isoformat(), "day_totals": [organization_day(org, d) for d in days]}]


def download_links(org: model.Organization, base: str, report: str, start: dt.date, end: dt.date) -> list[str]:
    files = 1
    if report.startswith("users-"):
        files = max(1, -(-len(report_lines(org, report, start, end)) // USERS_PER_FILE))
    expires = int((org.now + LINK_LIFETIME).timestamp())
    links = []
    for part in range(1, files + 1):
        path = f"{DOWNLOAD_PREFIX}{org.login}/{report}/{start.isoformat()}/{end.isoformat()}/part-{part}.ndjson"
        links.append(f"{base}{path}?expires={expires}&signature={_signature(org, base, path, expires)}")
    return links


def download(org: model.Organization, base: str, path: str, query: dict[str, str]) -> tuple[int, bytes]:
    """A report file (NDJSON) for a signed link; (status, body). 403 when the signature does not
    match or the link expired, as a storage service answers."""
    expires = query.get("expires", "")
    if not expires.isdigit() or query.get("signature") != _signature(org, base, path, int(expires)):
        return 403, b"<Error><Code>AuthenticationFailed</Code><Message>Signature did not match</Message></Error>"
    if int(expires) < org.now.timestamp():
        return 403, b"<Error><Code>AuthenticationFailed</Code><Message>Signed expiry time has passed</Message></Error>"
    parts = path[len(DOWNLOAD_PREFIX):].split("/")
    if len(parts) != 5 or parts[0] != org.login or parts[1] not in REPORTS:
        return 404, b"<Error><Code>BlobNotFound</Code></Error>"
    _, report, start, end, name = parts
    lines = report_lines(org, report, dt.date.fromisoformat(start), dt.date.fromisoformat(end))
    part = int(name.removeprefix("part-").removesuffix(".ndjson"))
    if report.startswith("users-"):
        lines = lines[(part - 1) * USERS_PER_FILE : part * USERS_PER_FILE]
    return 200, "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines).encode()
