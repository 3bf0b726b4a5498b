#!/bin/sh
# Chooses the Dagster instance file by environment (GHMETRICS_INSTANCE: production or ecs),
# so that one image serves the compose stack and ECS without editing files.
set -eu
instance="${GHMETRICS_INSTANCE:-production}"
source_file="/opt/ghmetrics/instance/dagster.${instance}.yaml"
if [ ! -f "$source_file" ]; then
  echo "error: GHMETRICS_INSTANCE=${instance} is not one of: production, ecs" >&2
  exit 2
fi
mkdir -p "$DAGSTER_HOME"
cp "$source_file" "$DAGSTER_HOME/dagster.yaml"
# A new image may bring new view SQL: the code server deploys the dbt views (and migrations).
case "$*" in *"api grpc"*) ghmetrics init ;; esac
exec "$@"
