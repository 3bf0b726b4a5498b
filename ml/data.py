"""Reading features from and writing insights to the warehouse (Postgres)."""

from __future__ import annotations

import math

import pandas as pd
import psycopg2
import psycopg2.extras

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.warehouse import app_data
from ml import features as F

FEATURES_TABLE = "marts.ml_weekly_features"
INSIGHT_COLUMNS = [
    "login", "scope_type", "scope", "week_start", "predicted_lead_time_hours", "predicted_overall_score",
    "predicted_lead_time_hours_low", "predicted_lead_time_hours_high", "predicted_overall_score_low",
    "predicted_overall_score_high", "interval_level", "lead_time_forecast_status", "overall_score_forecast_status",
    "anomaly_score", "is_anomaly", "anomaly_metric", "anomaly_z", "anomaly_weeks_per_event", "anomaly_observed",
    "anomaly_expected_low", "anomaly_expected_high", "model_version",
]


def load_features(url: str, scopes: list[tuple[str, str]] | None = None) -> pd.DataFrame:
    """ml_weekly_features, all of it or only the given (scope_type, scope) pairs."""
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        try:
            if scopes is None:
                cur.execute(f"select * from {FEATURES_TABLE}")
            else:
                if not scopes:
                    return pd.DataFrame(columns=F.KEY_COLUMNS + F.METRIC_COLUMNS)
                cur.execute(
                    f"select f.* from {FEATURES_TABLE} f join unnest(%s::text[], %s::text[]) as s(scope_type, scope)"
                    " using (scope_type, scope)",
                    ([s[0] for s in scopes], [s[1] for s in scopes]),
                )
        except psycopg2.errors.UndefinedTable:
            raise F.FeatureError(
                f"{FEATURES_TABLE} does not exist; materialise the dbt marts first (asset marts/ml_weekly_features)"
            ) from None
        columns = [d.name for d in cur.description]
        rows = cur.fetchall()
    frame = pd.DataFrame(rows, columns=columns)
    if frame.empty:
        return pd.DataFrame(columns=F.KEY_COLUMNS + F.METRIC_COLUMNS)
    return F.prepare(frame)


def user_scopes(url: str, login: str) -> list[tuple[str, str]]:
    """The user's own scope and the repositories in it (app.user_scope: registered and readable)."""
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        repos = app_data.scope_repositories(cur, login)
    return [("user", login)] + [("repository", r) for r in repos]


def _clean(value):
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    return value


def replace_insights(url: str, login: str, insights: pd.DataFrame) -> int:
    """Replaces the user's rows in ml.insights with `insights` in one transaction."""
    rows = [
        tuple(_clean(r[c]) if c != "week_start" else pd.Timestamp(r[c]).date() for c in INSIGHT_COLUMNS)
        for r in insights.to_dict("records")
    ]
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute("delete from ml.insights where login = %s", (login,))
        if rows:
            psycopg2.extras.execute_values(
                cur, f"insert into ml.insights ({', '.join(INSIGHT_COLUMNS)}) values %s", rows, page_size=500
            )
    return len(rows)


def replace_forecast_errors(url: str, model_name: str, version: str, errors: pd.DataFrame) -> int:
    """Stores a champion's live error per target week (ml/live.py) in ml.forecast_errors."""
    rows = [(model_name, version, r["target"], pd.Timestamp(r["target_week"]).date(), int(r["scopes"]),
             _clean(r["mae"]), _clean(r["mae_naive"]), _clean(r["mase"]) if math.isfinite(r["mase"]) else None)
            for r in errors.to_dict("records")]
    with warehouse.connect(url) as conn, conn.cursor() as cur:
        cur.execute("delete from ml.forecast_errors where model_name = %s and model_version = %s", (model_name, version))
        if rows:
            psycopg2.extras.execute_values(
                cur, "insert into ml.forecast_errors (model_name, model_version, target, target_week, scopes, mae,"
                " mae_naive, mase) values %s", rows)
    return len(rows)
