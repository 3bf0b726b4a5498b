"""Column names of the weekly marts (docs/contracts.md), shared by everything that reads them."""

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
# Values over the trailing 12 weeks ending with the row's week.
GRADE_COLUMNS = ("deployment_frequency_grade", "lead_time_grade", "change_failure_rate_grade", "time_to_restore_grade")
TRAILING_METRICS = ("review_coverage_12w", "performance_score")
# The numeric columns of marts.ml_weekly_features (every numeric column of fct_dora_weekly).
FEATURE_COLUMNS = WEEKLY_METRICS + TRAILING_METRICS
