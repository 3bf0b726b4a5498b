"""GitHub ingestion library (no Dagster): `client.GitHubClient` talks to the API,
`queries` holds every GraphQL query, `sync` writes the `raw` tables, `errors` the exceptions."""
