"""`ghmetrics sandbox ...`: the synthetic organisation from the command line.

Each subcommand is one function on the `sandbox` group; the main `ghmetrics` command adds the
group with `main.add_command(sandbox)`.
"""

from __future__ import annotations

import click


@click.group()
def sandbox() -> None:
    """The local GitHub sandbox: a deterministic synthetic organisation."""


@sandbox.command()
@click.option("--seed", type=int, required=True, help="Seed of the synthetic organisation.")
@click.option("--repos", type=click.IntRange(min=1), default=6, show_default=True, help="Repositories.")
@click.option("--prs", type=click.IntRange(min=10), default=150, show_default=True, help="Pull requests per repository.")
@click.option("--weeks", type=click.IntRange(min=2), default=26, show_default=True, help="Weeks of history.")
@click.option("--users", type=click.IntRange(min=3), default=14, show_default=True, help="Human users.")
@click.option("--owner", default="acme", show_default=True, help="Organisation login.")
@click.option("--advance-days", type=click.IntRange(min=0), default=0, show_default=True,
              help="Advance the organisation's clock by this many days before computing.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Directory for one CSV per mart plus anomalies.csv.")
def truth(seed: int, repos: int, prs: int, weeks: int, users: int, owner: str, advance_days: int,
          out_dir: str) -> None:
    """Write the ground-truth marts of a synthetic organisation as CSV files."""
    from ghmetrics_dagster.sandbox import generator
    from ghmetrics_dagster.sandbox import truth as ground_truth

    org = generator.generate(seed, repos=repos, prs_per_repo=prs, weeks=weeks, users=users, owner=owner)
    if advance_days:
        generator.advance(org, advance_days)
    frames = ground_truth.compute(org)
    paths = ground_truth.write_csv(frames, out_dir)
    for path in paths:
        click.echo(f"{path.name:28} {len(frames[path.stem]):>7} rows")
    click.echo(f"organisation {owner} (seed {seed}) at {org.now.isoformat()} -> {out_dir}")


@sandbox.command()
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8765, show_default=True,
              help="Port on 127.0.0.1 (0 picks a free one).")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the synthetic organisation.")
@click.option("--repos", type=click.IntRange(min=1), default=6, show_default=True, help="Repositories.")
@click.option("--prs", type=click.IntRange(min=10), default=150, show_default=True, help="Pull requests per repository.")
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0, show_default=True,
              help="Added to every API request.")
@click.option("--fault-rate", type=click.FloatRange(min=0, max=1), default=0.0, show_default=True,
              help="Share of requests answered with a 5xx.")
@click.option("--rest-limit", type=click.IntRange(min=1), default=5000, show_default=True, help="REST requests per hour per token.")
@click.option("--graphql-limit", type=click.IntRange(min=1), default=5000, show_default=True, help="GraphQL points per hour per token.")
@click.option("--request-log", type=click.Path(dir_okay=False), default=None, help="Append a JSON line per request here.")
@click.option("--issued-tokens", type=click.Path(dir_okay=False), default=None,
              help="Keep the OAuth tokens of sign-ins here, and accept them again after a restart.")
def serve(port: int, seed: int, repos: int, prs: int, latency_ms: float, fault_rate: float, rest_limit: int,
          graphql_limit: int, request_log: str | None, issued_tokens: str | None) -> None:
    """Serve GitHub's REST and GraphQL APIs for a synthetic organisation on 127.0.0.1 until Ctrl-C."""
    import time

    from ghmetrics_dagster.sandbox.server import run_sandbox

    try:
        context = run_sandbox(seed=seed, repos=repos, prs_per_repo=prs, latency_ms=latency_ms, fault_rate=fault_rate,
                              rest_limit=rest_limit, graphql_limit=graphql_limit, port=port, request_log=request_log,
                              issued_tokens_path=issued_tokens)
        handle = context.__enter__()
    except OSError as error:
        raise click.ClickException(f"cannot listen on 127.0.0.1:{port} ({error.strerror}): pick another --port") from None
    try:
        click.echo(f"REST     {handle.rest_url}")
        click.echo(f"GraphQL  {handle.graphql_url}")
        # Sandbox tokens are public test values, valid only against this server.
        for token in handle.tokens:
            click.echo(f"token    {token}  (acts as {handle.token_login(token)})")
        click.echo(f"organisation {handle.org.login}: {len(handle.org.repositories)} repositories (seed {seed}); Ctrl-C stops")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        context.__exit__(None, None, None)


if __name__ == "__main__":
    sandbox()
