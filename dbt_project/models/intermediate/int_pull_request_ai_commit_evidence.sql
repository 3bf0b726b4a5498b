-- One row per pull request with AI evidence in its commits' messages (docs/ai.md): the
-- strongest, by rule (an AI co-author before a Made-with-style trailer), then the earliest
-- commit (authored_at, then sha), then the first such line of its message. Trailers are
-- message lines, matched case-insensitively: `Co-authored-by: name <email>` whose email
-- matches one of ai_coauthor_emails, and `<one of ai_trailer_keys>: value` whose value
-- matches ai_tool_pattern.
-- A view: fct_pull_requests reads it for the pull requests it recomputes, and the filter on
-- pull_request_id reaches the commits' index through the DISTINCT ON.

with commits as (
    select pull_request_id, sha, authored_at, message
    from {{ ref('stg_github__pull_request_commits') }}
),

co_authors as (
    select
        commits.pull_request_id,
        1 as rule_rank,
        commits.authored_at,
        commits.sha,
        line.position,
        'co-author ' || btrim(btrim(line.match[1], E' \t') || ' <' || btrim(line.match[2], E' \t') || '>')
            || ' in commit ' || left(commits.sha, 7) as evidence
    from commits
    cross join lateral regexp_matches(commits.message, {{ ai_coauthor_line_regex() }}, 'gin')
        with ordinality as line (match, position)
    where btrim(line.match[2], E' \t') ~* any({{ text_array(var('ai_coauthor_emails')) }})
),

trailers as (
    select
        commits.pull_request_id,
        2 as rule_rank,
        commits.authored_at,
        commits.sha,
        line.position,
        'trailer ' || line.match[1] || ': ' || btrim(line.match[2], E' \t') || ' in commit ' || left(commits.sha, 7) as evidence
    from commits
    cross join lateral regexp_matches(commits.message, {{ ai_trailer_line_regex() }}, 'gin')
        with ordinality as line (match, position)
    where btrim(line.match[2], E' \t') ~* '{{ var("ai_tool_pattern") | replace("'", "''") }}'
),

evidence as (
    select * from co_authors
    union all
    select * from trailers
)

select distinct on (pull_request_id)
    pull_request_id,
    evidence
from evidence
order by pull_request_id, rule_rank, authored_at, sha, position
