"""Column names of the weekly marts (docs/contracts.md, docs/dora.md), shared by everything that reads them."""

# Per scope-week values of marts.fct_dora_weekly, in contract order.
WEEKLY_METRICS = (
    "deployments",
    "deployment_days",
    "median_lead_time_hours",
    "change_failure_rate",
    "failed_changes",
    "incidents",
    "median_time_to_restore_hours",
    "merged_prs",
    "review_coverage",
    "median_pr_size",
    "p90_pr_size",
    "median_coding_hours",
    "median_pickup_hours",
    "median_review_hours",
    "median_deploy_hours",
)
# DORA's 2023 grades and the project's former weighted 0-100 score over the trailing 12 weeks:
# kept under these names for one release; the headline is `overall_score` (docs/dora.md).
LEGACY_GRADE_COLUMNS = (
    "legacy_deployment_frequency_grade",
    "legacy_lead_time_grade",
    "legacy_change_failure_rate_grade",
    "legacy_time_to_restore_grade",
)
GRADE_COLUMNS = LEGACY_GRADE_COLUMNS  # the former name of the list
LEGACY_SCORE = "legacy_performance_score"
# Values over the trailing 12 weeks ending with the row's week (the 2023 model's).
TRAILING_METRICS = ("review_coverage_12w", LEGACY_SCORE)

# docs/dora.md: the week's rework and recovery ...
DORA_WEEK_METRICS = ("rework_deployments", "rework_rate", "recovered_deployments", "median_recovery_hours")
# ... DORA's five metrics over the trailing window (12 weeks; 26 for rework_rate_26w) ...
DORA_WINDOW_METRICS = (
    "lead_time_hours_12w",
    "deployment_days_per_week_12w",
    "deployments_per_deployment_day_12w",
    "change_failure_rate_12w",
    "recovery_hours_12w",
    "rework_rate_12w",
    "rework_rate_26w",
)
# ... their Quick Check bands (1..6) and scores (0..10) ...
BAND_COLUMNS = ("lead_time_band", "deployment_frequency_band", "recovery_band")
SCORE_COLUMNS = (
    "lead_time_score",
    "deployment_frequency_score",
    "recovery_score",
    "change_fail_score",
    "rework_score",
    "throughput_score",
    "stability_score",
    "overall_score",
)
# ... and the headline scores minus DORA's 2025 benchmark mean of the chosen segment.
BENCHMARK_DELTA_COLUMNS = ("overall_vs_benchmark", "throughput_vs_benchmark", "stability_vs_benchmark")

# The project's headline: the mean of the five Quick Check scores, 0..10.
OVERALL_SCORE = "overall_score"

# The numeric columns of marts.ml_weekly_features (every numeric column of fct_dora_weekly), in
# the mart's order.
FEATURE_COLUMNS = (
    WEEKLY_METRICS + TRAILING_METRICS + DORA_WEEK_METRICS + DORA_WINDOW_METRICS + BAND_COLUMNS + SCORE_COLUMNS
    + BENCHMARK_DELTA_COLUMNS
)

# DORA's five metrics: (name in marts.dora_benchmarks, value over 12 weeks, its score, its band).
# Throughput is lead time, deployment frequency and recovery; stability is change fail and rework.
FIVE_METRICS = (
    ("lead_time", "lead_time_hours_12w", "lead_time_score", "lead_time_band"),
    ("deployment_frequency", "deployment_days_per_week_12w", "deployment_frequency_score", "deployment_frequency_band"),
    ("recovery", "recovery_hours_12w", "recovery_score", "recovery_band"),
    ("change_fail", "change_failure_rate_12w", "change_fail_score", None),
    ("rework", "rework_rate_12w", "rework_score", None),
)
# The three headline scores: (name in marts.dora_benchmarks, score column, delta column).
HEADLINE_SCORES = (
    ("overall", "overall_score", "overall_vs_benchmark"),
    ("throughput", "throughput_score", "throughput_vs_benchmark"),
    ("stability", "stability_score", "stability_vs_benchmark"),
)
BENCHMARK_EDITION = "DORA 2025"
