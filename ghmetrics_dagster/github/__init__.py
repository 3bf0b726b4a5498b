"""GitHub API library (no Dagster): `client.GitHubClient` talks to the API, `queries` holds
every GraphQL query, `errors` the exceptions, `validate` checks objects' shapes and `access`
which repositories a token can read. `ghmetrics_dagster.sync` writes the `raw` tables."""
