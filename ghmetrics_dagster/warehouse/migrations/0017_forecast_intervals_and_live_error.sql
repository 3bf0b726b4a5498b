-- Models people can trust: forecasts carry their conformal interval and whether each target is
-- published (it beat the naive forecast over rolling origins and has not fallen behind it
-- live); anomalies carry their reading on a stated scale; the champion's live error is kept
-- per target and week.
alter table ml.insights
    add column if not exists predicted_lead_time_hours_low numeric,
    add column if not exists predicted_lead_time_hours_high numeric,
    add column if not exists predicted_overall_score_low numeric,
    add column if not exists predicted_overall_score_high numeric,
    add column if not exists interval_level numeric,
    -- published | no_better_than_naive | behind_naive_live; null without a forecast model
    add column if not exists lead_time_forecast_status text,
    add column if not exists overall_score_forecast_status text,
    add column if not exists anomaly_z numeric,
    add column if not exists anomaly_weeks_per_event numeric,
    add column if not exists anomaly_observed numeric,
    add column if not exists anomaly_expected_low numeric,
    add column if not exists anomaly_expected_high numeric;

create table if not exists ml.forecast_errors (
    model_name text not null,
    model_version text not null,
    target text not null,
    target_week date not null,
    scopes integer not null,
    mae numeric,
    mae_naive numeric,
    mase numeric,
    computed_at timestamptz not null default now(),
    primary key (model_name, model_version, target, target_week)
);
