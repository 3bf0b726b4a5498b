"""Every query against the `app` schema (migrations/, docs/contracts.md `app` tables).

Each function takes the cursor of the caller's transaction, so the caller decides what is
committed together; none of them commits. dbt reads the same tables as sources.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

# --- users, their repositories and logins ------------------------------------------------------


def save_user(cur, login: str, display_name: str | None, token_ciphertext: str | None) -> None:
    """Adds the user, or updates them; a None name or token keeps the stored one."""
    cur.execute(
        """insert into app.users (login, display_name, token_ciphertext) values (%s, %s, %s)
           on conflict (login) do update set
             display_name = coalesce(excluded.display_name, app.users.display_name),
             token_ciphertext = coalesce(excluded.token_ciphertext, app.users.token_ciphertext)""",
        (login, display_name, token_ciphertext),
    )


def add_user_if_missing(cur, login: str, display_name: str | None) -> None:
    cur.execute(
        "insert into app.users (login, display_name) values (%s, %s) on conflict (login) do nothing",
        (login, display_name),
    )


def user_exists(cur, login: str) -> bool:
    cur.execute("select 1 from app.users where login = %s", (login,))
    return cur.fetchone() is not None


def users_overview(cur) -> list[tuple]:
    """(login, display name or '', has a token, registered repositories, last login) by login."""
    cur.execute(
        """select u.login, coalesce(u.display_name, ''), u.token_ciphertext is not null,
                  (select count(*) from app.user_repositories r where r.login = u.login),
                  (select max(logged_in_at) from app.user_logins l where l.login = u.login)
           from app.users u order by u.login"""
    )
    return cur.fetchall()


def first_user(cur, with_weekly_rows: bool) -> str | None:
    """The first user by login; with `with_weekly_rows`, the first with user rows in
    marts.fct_dora_weekly (the caller checks that the mart exists)."""
    if with_weekly_rows:
        cur.execute(
            "select u.login from app.users u where exists (select 1 from marts.fct_dora_weekly d"
            " where d.scope_type = 'user' and d.scope = u.login) order by u.login limit 1"
        )
    else:
        cur.execute("select login from app.users order by login limit 1")
    row = cur.fetchone()
    return row[0] if row else None


def add_user_repositories(cur, login: str, repos: Iterable[str]) -> None:
    cur.executemany(
        "insert into app.user_repositories (login, repo_full_name) values (%s, %s) on conflict do nothing",
        [(login, repo) for repo in repos],
    )


def user_repositories(cur, login: str) -> list[str]:
    """The repositories registered for the user (readable or not), by name."""
    cur.execute("select repo_full_name from app.user_repositories where login = %s order by 1", (login,))
    return [row[0] for row in cur.fetchall()]


def rename_registrations(cur, given: str, canonical: str) -> None:
    """Registrations and settings under `given` move to `canonical`; a user registered under
    both keeps one row, and settings already stored under `canonical` win."""
    cur.execute(
        "delete from app.user_repositories r where repo_full_name = %s and exists ("
        " select 1 from app.user_repositories c where c.login = r.login and c.repo_full_name = %s)",
        (given, canonical),
    )
    cur.execute("update app.user_repositories set repo_full_name = %s where repo_full_name = %s", (canonical, given))
    cur.execute(
        "update app.repository_settings set repo_full_name = %s where repo_full_name = %s"
        " and not exists (select 1 from app.repository_settings where repo_full_name = %s)",
        (canonical, given, canonical),
    )


def record_login(cur, login: str) -> tuple[int, dt.datetime]:
    """A new app.user_logins row (the login sensor reads it); returns its id and time."""
    cur.execute("insert into app.user_logins (login) values (%s) returning id, logged_in_at", (login,))
    return cur.fetchone()


def logins_after(cur, after_id: int, limit: int = 5000) -> list[tuple[int, str, dt.datetime]]:
    """(id, login, logged_in_at) of the logins recorded after `after_id`, oldest first."""
    cur.execute(
        "select id, login, logged_in_at from app.user_logins where id > %s order by id limit %s",
        (after_id, limit),
    )
    return cur.fetchall()


# --- tokens ------------------------------------------------------------------------------------


def token_ciphertext(cur, login: str) -> str | None:
    cur.execute("select token_ciphertext from app.users where login = %s", (login,))
    row = cur.fetchone()
    return row[0] if row else None


def stored_token_ciphertexts(cur) -> list[str]:
    cur.execute("select token_ciphertext from app.users where token_ciphertext is not null")
    return [row[0] for row in cur.fetchall()]


def lock_token_ciphertexts(cur) -> list[tuple[str, str]]:
    """(login, ciphertext) of every stored token, locked until the transaction ends."""
    cur.execute("select login, token_ciphertext from app.users where token_ciphertext is not null for update")
    return cur.fetchall()


def replace_token_ciphertexts(cur, ciphertexts: list[tuple[str, str]]) -> None:
    """Stores (ciphertext, login) pairs."""
    cur.executemany("update app.users set token_ciphertext = %s where login = %s", ciphertexts)


# --- scope: which registered repositories the user's token can read ----------------------------


def replace_repository_access(cur, login: str, rows: list[tuple]) -> None:
    """The user's access check: rows of (login, repo_full_name, readable, checked_with, reason)."""
    cur.execute("delete from app.user_repository_access where login = %s", (login,))
    cur.executemany(
        "insert into app.user_repository_access (login, repo_full_name, readable, checked_with, reason)"
        " values (%s, %s, %s, %s, %s) on conflict (login, repo_full_name) do update set"
        " readable = excluded.readable, checked_with = excluded.checked_with, reason = excluded.reason,"
        " checked_at = now()",
        rows,
    )


def repository_access(cur, login: str) -> list[tuple[str, str, bool]]:
    """(checked_with, repo_full_name, readable) of the user's last access check, by name."""
    cur.execute(
        "select checked_with, repo_full_name, readable from app.user_repository_access where login = %s"
        " order by repo_full_name",
        (login,),
    )
    return cur.fetchall()


def scope_repositories(cur, login: str) -> list[str]:
    """The user's scope (app.user_scope: registered and readable), by name."""
    cur.execute("select repo_full_name from app.user_scope where login = %s order by repo_full_name", (login,))
    return [row[0] for row in cur.fetchall()]


def scope_repository(cur, login: str, full_name: str) -> str | None:
    """The repository as stored, when it is in the user's scope (any letter case)."""
    cur.execute(
        "select repo_full_name from app.user_scope where login = %s and lower(repo_full_name) = lower(%s)",
        (login, full_name),
    )
    row = cur.fetchone()
    return row[0] if row else None


def scope_organizations(cur, logins: list[str]) -> dict[str, list[str]]:
    """Owner login -> the users (of `logins`) whose scope holds a repository it owns, for the
    owners that are organisations: raw.repositories says so (`owner.__typename`, in GitHub's
    spelling of the login); an owner not synced yet is assumed to be one."""
    cur.execute(
        """
        select coalesce(r.data -> 'owner' ->> 'login', split_part(s.repo_full_name, '/', 1)) as owner,
               array_agg(distinct s.login order by s.login)
        from app.user_scope as s
        left join raw.repositories as r on lower(r.repo_full_name) = lower(s.repo_full_name)
        where s.login = any(%s)
          and coalesce(r.data -> 'owner' ->> '__typename', 'Organization') = 'Organization'
        group by 1
        order by 1
        """,
        (list(logins),),
    )
    return {owner: users for owner, users in cur.fetchall()}


# --- summaries and refreshes -------------------------------------------------------------------


def save_summary(cur, values: dict) -> tuple[int, dt.datetime]:
    """A new app.summaries row from `values` (its columns); returns its id and time."""
    columns = ", ".join(values)
    cur.execute(
        f"insert into app.summaries ({columns}) values ({', '.join(['%s'] * len(values))})"
        " returning id, generated_at",
        tuple(values.values()),
    )
    return cur.fetchone()


def latest_summary(cur, login: str) -> tuple | None:
    """(text, provider, generated_at, grounded) of the user's newest summary."""
    cur.execute(
        "select text, provider, generated_at, grounded from app.summaries where login = %s"
        " order by generated_at desc limit 1",
        (login,),
    )
    return cur.fetchone()


def summary_times(cur) -> list[tuple[str, dt.datetime]]:
    """(login, generated_at) of every summary, oldest first."""
    cur.execute("select login, generated_at from app.summaries order by generated_at")
    return cur.fetchall()


def last_summaries(cur, logins: list[str]) -> dict[str, dt.datetime]:
    """When each user's newest summary was generated."""
    cur.execute(
        "select login, max(generated_at) from app.summaries where login = any(%s) group by login",
        (logins,),
    )
    return dict(cur.fetchall())


def user_state(cur, login: str) -> tuple:
    """(last login, last summary, newest summary id overall, and the user's refresh failure:
    failed_at, retry_at, attempts, reason), in one round trip."""
    cur.execute(
        "select (select max(logged_in_at) from app.user_logins where login = %(login)s),"
        " (select max(generated_at) from app.summaries where login = %(login)s),"
        " (select coalesce(max(id), 0) from app.summaries),"
        " f.failed_at, f.retry_at, coalesce(f.attempts, 0), f.reason"
        " from (select 1) as one left join app.refresh_failures f on f.login = %(login)s",
        {"login": login},
    )
    return cur.fetchone()


def publish_refresh_failures(cur, rows: list[tuple]) -> None:
    """app.refresh_failures becomes `rows` of (login, attempts, failed_at, retry_at, reason);
    users no longer in app.users are left out."""
    cur.execute("delete from app.refresh_failures where not (login = any(%s))", ([row[0] for row in rows],))
    cur.executemany(
        "insert into app.refresh_failures (login, attempts, failed_at, retry_at, reason)"
        " select %s, %s, %s, %s, %s where exists (select 1 from app.users where login = %s)"
        " on conflict (login) do update set attempts = excluded.attempts, failed_at = excluded.failed_at,"
        " retry_at = excluded.retry_at, reason = excluded.reason",
        [(*row, row[0]) for row in rows],
    )


# --- settings ----------------------------------------------------------------------------------


def read_settings(cur, names: list[str]) -> dict[str, str]:
    """The stored values of organisation-wide settings (app.settings); a missing one means the default."""
    cur.execute("select name, value from app.settings where name = any(%s)", (list(names),))
    return dict(cur.fetchall())


def write_settings(cur, values: dict[str, str | None]) -> None:
    """Stores organisation-wide settings; None removes one (back to its default)."""
    for name, value in values.items():
        if value is None:
            cur.execute("delete from app.settings where name = %s", (name,))
        else:
            cur.execute(
                "insert into app.settings (name, value) values (%s, %s) "
                "on conflict (name) do update set value = excluded.value, updated_at = now()",
                (name, value),
            )


def update_repository_settings(cur, repo_full_name: str, values: dict[str, str | None]) -> None:
    """Creates the repository's row if missing, then sets the given columns (None = default)."""
    cur.execute(
        "insert into app.repository_settings (repo_full_name) values (%s) on conflict do nothing",
        (repo_full_name,),
    )
    if values:
        assignments = ", ".join(f"{column} = %s" for column in values)
        cur.execute(
            f"update app.repository_settings set {assignments}, updated_at = now() where repo_full_name = %s",
            (*values.values(), repo_full_name),
        )


def repository_settings(cur, repo_full_name: str, columns: Iterable[str]) -> tuple | None:
    """The stored `columns` of the repository's row; None when it has none."""
    cur.execute(
        f"select {', '.join(columns)} from app.repository_settings where repo_full_name = %s",
        (repo_full_name,),
    )
    return cur.fetchone()


# --- the LLM's answer cache and spending ledger ------------------------------------------------


def cached_answers(cur, keys: list[str]) -> list[tuple]:
    """(request_sha256, response, provider, model, input_tokens, output_tokens) of the cached keys."""
    cur.execute(
        "select request_sha256, response, provider, model, input_tokens, output_tokens"
        " from app.llm_cache where request_sha256 = any(%s)",
        (keys,),
    )
    return cur.fetchall()


def cache_answer(cur, key: str, response: str, provider: str, model: str, input_tokens: int,
                 output_tokens: int) -> None:
    cur.execute(
        "insert into app.llm_cache"
        " (request_sha256, response, provider, model, input_tokens, output_tokens, tokens)"
        " values (%s, %s, %s, %s, %s, %s, %s)"
        " on conflict (request_sha256) do update set response = excluded.response,"
        " input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,"
        " tokens = excluded.tokens, created_at = now()",
        (key, response, provider, model, input_tokens, output_tokens, input_tokens + output_tokens),
    )


def spent_on(cur, day: dt.date) -> float:
    """What the LLM calls of `day` cost or reserved, in USD."""
    cur.execute("select coalesce(sum(cost_usd), 0) from app.llm_spend where day = %s", (day,))
    return float(cur.fetchone()[0])


def reserve_spend(cur, day: dt.date, run_id, provider, model, amount: float) -> int:
    """A `reserved` ledger row; returns its id."""
    cur.execute(
        "insert into app.llm_spend (day, run_id, provider, model, cost_usd, state)"
        " values (%s, %s, %s, %s, %s, 'reserved') returning id",
        (day, run_id, provider, model, amount),
    )
    return cur.fetchone()[0]


def settle_spend(cur, row_id: int, cost: float) -> None:
    cur.execute("update app.llm_spend set cost_usd = %s, state = 'settled' where id = %s", (cost, row_id))
