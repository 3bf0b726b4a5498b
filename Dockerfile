# syntax=docker/dockerfile:1
# Build: docker build -t ghmetrics .   Runs the Dagster code server on port 4000 as a non-root user.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md requirements.lock ./
COPY ghmetrics_dagster ghmetrics_dagster
COPY ml ml
COPY setup.py ./
COPY dbt_project dbt_project
COPY dagster.yaml workspace.yaml ./
# Without the `demo` extra and without the sandbox: production names its database and talks to
# GitHub, so neither the local GitHub nor the embedded Postgres ships in the image.
RUN rm -rf ghmetrics_dagster/sandbox && /opt/venv/bin/pip install -c requirements.lock .
# dagster-dbt needs dbt's manifest before the definitions load:
# parse once at build time so the code server never parses at start-up.
ENV GHMETRICS_DBT_PROJECT_DIR=/src/dbt_project
RUN /opt/venv/bin/python -c "from ghmetrics_dagster.defs.transform import prepare_dbt_project; prepare_dbt_project()"

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 ghmetrics \
 && mkdir -p /opt/dagster_home /opt/ghmetrics \
 && chown ghmetrics /opt/dagster_home
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=ghmetrics /src/dbt_project /opt/ghmetrics/dbt_project
COPY deploy/workspace.yaml /opt/ghmetrics/workspace.yaml
COPY deploy/dagster.production.yaml deploy/dagster.ecs.yaml /opt/ghmetrics/instance/
COPY deploy/entrypoint.sh /opt/ghmetrics/entrypoint.sh
ENV PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster_home \
    GHMETRICS_HOME=/opt/dagster_home/ghmetrics \
    GHMETRICS_DBT_PROJECT_DIR=/opt/ghmetrics/dbt_project \
    GHMETRICS_INSTANCE=production
WORKDIR /opt/ghmetrics
USER ghmetrics
EXPOSE 4000
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD dagster api grpc-health-check -p 4000 || exit 1
ENTRYPOINT ["/opt/ghmetrics/entrypoint.sh"]
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "ghmetrics_dagster.definitions"]
