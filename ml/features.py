"""Weekly feature frames for the ML models.

Input is `marts.ml_weekly_features` (docs/contracts.md): one row per (scope_type, scope,
week_start) with every numeric column of `fct_dora_weekly`. Everything here is pure pandas.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ghmetrics_dagster.metrics import contracts

KEY_COLUMNS = ["scope_type", "scope", "week_start"]

# The numeric columns of fct_dora_weekly, in contract order.
METRIC_COLUMNS = list(contracts.FEATURE_COLUMNS)

# Shares in [0, 1], Quick Check bands and 0-10 scores, their distance to the benchmark and the
# legacy 0-100 score: compared on their own scale. Everything else is a count, a size or a
# duration, skewed to the right, compared on log1p.
SHARE_METRICS = {"change_failure_rate", "review_coverage", "review_coverage_12w", "rework_rate",
                 "change_failure_rate_12w", "rework_rate_12w", "rework_rate_26w"}
BOUNDED_METRICS = (SHARE_METRICS | set(contracts.BAND_COLUMNS) | set(contracts.SCORE_COLUMNS)
                   | set(contracts.BENCHMARK_DELTA_COLUMNS) | {contracts.LEGACY_SCORE})

LEAD_TIME = "median_lead_time_hours"
SCORE = contracts.OVERALL_SCORE  # the headline Quick Check score, 0..10 (docs/dora.md)
TARGETS = [LEAD_TIME, SCORE]

# The week's own columns the forecaster sees: all but the distances to the benchmark, which
# repeat the scores and move when the benchmark segment is changed.
FORECAST_RAW_METRICS = [m for m in METRIC_COLUMNS if m not in contracts.BENCHMARK_DELTA_COLUMNS]

# Metrics whose recent history is summarised for the forecaster.
HISTORY_METRICS = [
    "median_lead_time_hours",
    SCORE,
    "deployments",
    "deployment_days",
    "merged_prs",
    "change_failure_rate",
    "rework_rate",
    "median_recovery_hours",
    "review_coverage",
    "median_pr_size",
    "median_review_hours",
    "median_deploy_hours",
]


class FeatureError(ValueError):
    """The feature frame cannot be used; the message says what is wrong."""


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """Validates and normalises a raw ml_weekly_features frame: typed, sorted, one row per key."""
    missing = [c for c in KEY_COLUMNS + TARGETS if c not in frame.columns]
    if missing:
        raise FeatureError(
            f"ml_weekly_features lacks columns {missing}; rebuild the marts (dbt) so they match docs/contracts.md"
        )
    out = frame.copy()
    out["week_start"] = pd.to_datetime(out["week_start"]).dt.tz_localize(None).dt.normalize()
    for column in METRIC_COLUMNS:
        if column in out.columns:
            out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
        else:
            out[column] = np.nan
    out = out.drop_duplicates(KEY_COLUMNS, keep="last")
    return out.sort_values(KEY_COLUMNS).reset_index(drop=True)


# Event counts: roughly Poisson, so compared on the Anscombe scale (2 * sqrt(x + 3/8)) where
# the noise has a standard deviation near 1 whatever the level.
COUNT_METRICS = {"deployments", "deployment_days", "failed_changes", "incidents", "merged_prs",
                 "rework_deployments", "recovered_deployments"}


def _transform(metric: str, values: pd.Series) -> pd.Series:
    return values if metric in BOUNDED_METRICS else np.log1p(values.clip(lower=0))


def _robust_transform(metric: str, values: pd.Series) -> pd.Series:
    if metric in COUNT_METRICS:
        return 2 * np.sqrt(values.clip(lower=0) + 0.375)
    return _transform(metric, values)


def forecast_features(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per scope-week with lagged history features and next week's targets.

    Columns: the keys; the feature columns (see `forecast_feature_names`); `naive_*` (the
    last-value forecast of each target); `target_*` (the next week's value, NaN when the next
    week is missing or has no value); `target_week_start`.
    """
    frame = prepare(frame)
    if frame.empty:
        return pd.DataFrame(columns=KEY_COLUMNS)
    by_scope = frame.groupby(["scope_type", "scope"], sort=False)
    cols: dict[str, pd.Series] = {}
    cols["is_user_scope"] = (frame["scope_type"] == "user").astype(float)
    cols["weeks_of_history"] = by_scope.cumcount().astype(float)
    for metric in FORECAST_RAW_METRICS:
        cols[metric] = frame[metric]
    transformed = pd.DataFrame({m: _transform(m, frame[m]) for m in HISTORY_METRICS})
    transformed["scope_type"], transformed["scope"] = frame["scope_type"], frame["scope"]
    g = transformed.groupby(["scope_type", "scope"], sort=False)
    for metric in HISTORY_METRICS:
        gm = g[metric]
        cols[f"{metric}__last"] = gm.ffill()
        cols[f"{metric}__lag1"] = gm.shift(1)
        cols[f"{metric}__lag2"] = gm.shift(2)
        for window in (4, 8, 12):
            cols[f"{metric}__mean{window}"] = gm.rolling(window, min_periods=1).mean().reset_index(level=[0, 1], drop=True)
        cols[f"{metric}__median8"] = gm.rolling(8, min_periods=1).median().reset_index(level=[0, 1], drop=True)
        cols[f"{metric}__std8"] = gm.rolling(8, min_periods=2).std().reset_index(level=[0, 1], drop=True)
    # Inputs that leave the 12-week window next week drive the score's change.
    for metric in ("deployment_days", "deployments", "failed_changes", "rework_deployments",
                   "median_lead_time_hours", "median_recovery_hours"):
        cols[f"{metric}__leaving_window"] = by_scope[metric].shift(11)
    # Next week's score is taken on a window that shares its latest 11 weeks with this one:
    # the score of those 11 weeks says where it is heading before the new week arrives.
    score11 = window_score(frame, 11)
    score12 = window_score(frame, 12)
    cols["score__window11"] = score11
    cols["score__window11_minus_last"] = score11 - by_scope[SCORE].ffill()
    cols["score__window12_minus_last"] = score12 - by_scope[SCORE].ffill()
    next_week = by_scope["week_start"].shift(-1)
    contiguous = (next_week - frame["week_start"]) == pd.Timedelta(days=7)
    for target in TARGETS:
        cols[f"naive_{target}"] = by_scope[target].ffill()
        cols[f"target_{target}"] = by_scope[target].shift(-1).where(contiguous)
    cols["target_week_start"] = frame["week_start"] + pd.Timedelta(days=7)
    return pd.concat([frame[KEY_COLUMNS], pd.DataFrame(cols, index=frame.index)], axis=1)


# Quick Check hour bands (docs/dora.md): the lower bound of each band, worst first.
_HOUR_BANDS = ((4380.0, 1), (720.0, 2), (168.0, 3), (24.0, 4), (1.0, 5))


def _hours_score(hours: pd.Series) -> pd.Series:
    """Lead time or recovery hours -> the Quick Check score (band - 1) * 2; NaN stays NaN."""
    band = np.select([hours >= lower for lower, _ in _HOUR_BANDS], [b for _, b in _HOUR_BANDS], 6)
    return pd.Series((band - 1) * 2.0, index=hours.index).where(hours.notna())


def window_score(frame: pd.DataFrame, window: int) -> pd.Series:
    """The overall Quick Check score (docs/dora.md) recomputed from weekly rows over the
    trailing `window` weeks ending at each row. Approximate where the contract pools items
    (lead time and recovery medians become medians of weekly medians; deployments per
    deployment day count failed deployments too); exact otherwise.
    Expects `prepare`d input (sorted by scope and week)."""
    g = frame.groupby(["scope_type", "scope"], sort=False)

    def roll(column: str, how: str) -> pd.Series:
        r = getattr(g[column].rolling(window, min_periods=1), how)()
        return r.reset_index(level=[0, 1], drop=True).reindex(frame.index)

    tmp = frame[["scope_type", "scope"]].copy()
    tmp["days"] = frame["deployment_days"].fillna(0)
    tmp["deploys"] = frame["deployments"].fillna(0)
    tmp["failed"] = frame["failed_changes"].fillna(0)
    tmp["rework"] = frame["rework_deployments"].fillna(0)
    tmp["weeks"] = 1.0
    gt = tmp.groupby(["scope_type", "scope"], sort=False)
    sums = {c: gt[c].rolling(window, min_periods=1).sum().reset_index(level=[0, 1], drop=True).reindex(frame.index)
            for c in ("days", "deploys", "failed", "rework", "weeks")}
    d = sums["days"] / sums["weeks"]
    m = (sums["deploys"] / sums["days"]).where(sums["days"] > 0)
    frequency_band = np.select([(d >= 5) & (m >= 2), d >= 5, d >= 1, d >= 12 / 52, sums["days"] > 0],
                               [6, 5, 4, 3, 2], 1)
    has_deploys = sums["deploys"] > 0
    scores = [
        _hours_score(roll("median_lead_time_hours", "median")),
        pd.Series((frequency_band - 1) * 2.0, index=frame.index),
        _hours_score(roll("median_recovery_hours", "median")),
        (10 - 10 * sums["failed"] / sums["deploys"]).where(has_deploys),
        (10 - 10 * sums["rework"] / sums["deploys"]).where(has_deploys),
    ]
    return pd.concat(scores, axis=1).mean(axis=1, skipna=True)


def forecast_feature_names(features: pd.DataFrame) -> list[str]:
    skip = set(KEY_COLUMNS) | {"target_week_start"}
    return [c for c in features.columns if c not in skip and not c.startswith(("naive_", "target_"))]


# Smallest scale per metric (on its transformed axis), so a history that never moved does not
# make the first small change look extreme: 1 on the count scale is Poisson noise, 0.25 on
# log1p is about +-28 %, 0.15 of a share (a ratio of a few events each week is coarse),
# half a point of a 0-10 score or a band, 5 points of the legacy 0-100 score.
_SCALE_FLOORS = {**{m: 1.0 for m in COUNT_METRICS}, **{m: 0.15 for m in SHARE_METRICS},
                 **{m: 0.5 for m in BOUNDED_METRICS - SHARE_METRICS}, contracts.LEGACY_SCORE: 5.0,
                 "deployments_per_deployment_day": 0.1}


# Derived for the anomaly model: several deployments on the same day (redeploy storms) move
# this while deployment_days stays put.
DEPLOYS_PER_DAY = "deployments_per_deployment_day"
# The values of a week alone: trailing-window aggregates, bands and scores only echo them, so
# they get no z-score of their own.
ROBUST_METRICS = list(contracts.WEEKLY_METRICS) + list(contracts.DORA_WEEK_METRICS) + [DEPLOYS_PER_DAY]
SHARE_DENOMINATORS = {"change_failure_rate": "deployments", "review_coverage": "merged_prs",
                      "rework_rate": "deployments"}
# Weekly medians (and the 90th percentile) over the week's merged pull requests.
PULL_REQUEST_COUNT = "merged_prs"
PULL_REQUEST_MEDIANS = {"median_lead_time_hours", "median_pr_size", "p90_pr_size", "median_coding_hours",
                        "median_pickup_hours", "median_review_hours", "median_deploy_hours"}
# Judged by the tail probability of a count (binomial or Poisson), not by median and MAD.
EXACT_TAIL_METRICS = {*SHARE_DENOMINATORS, DEPLOYS_PER_DAY}


def robust_scores(frame: pd.DataFrame, history_weeks: int = 26, min_history: int = 6,
                  range_z: dict[str, float] | float | None = None) -> pd.DataFrame:
    """Per scope-week and metric, a robust z-score against the scope's own preceding weeks.

    z = (x - median) / scale over the previous `history_weeks` weeks (the week itself excluded,
    so an anomaly does not hide itself), on log1p for skewed metrics. scale is 1.4826 * MAD;
    when the MAD is 0 (a metric that rarely moves) it falls back to 1.2533 * the mean absolute
    deviation and then to a floor, so a constant history never divides by zero. Shares of a few
    events and redeploys are judged by their binomial and Poisson tails instead (`_share_z`,
    `_redeploy_z`). Weeks with fewer than `min_history` earlier values, and missing values,
    score 0.
    Returns the keys, `history_weeks` (earlier weeks available) and one `z__<metric>` column
    per metric. With `range_z` (one limit, or one per metric), also `low__<metric>` and
    `high__<metric>`: the values, in the metric's own units, whose |z| stays below the limit
    (the week's expected range; NaN where the week is not judged).
    """
    frame = prepare(frame)
    if frame.empty:
        return pd.DataFrame(columns=KEY_COLUMNS + ["history_weeks"] + [f"z__{m}" for m in ROBUST_METRICS])
    # All scopes at once: row r of `past(...)` holds that scope's `history_weeks` values before it.
    position = frame.groupby(["scope_type", "scope"], sort=False).cumcount().to_numpy()
    scope_id = frame.groupby(["scope_type", "scope"], sort=False).ngroup().to_numpy()
    past = _PastWindows(scope_id, position, history_weeks)
    out = frame[KEY_COLUMNS].copy()
    out["history_weeks"] = np.minimum(position, history_weeks)
    for metric in ROBUST_METRICS:
        usual = _usual(metric, frame, past, min_history)
        out[f"z__{metric}"] = usual.z
        if range_z is not None:
            limit = range_z.get(metric, np.nan) if isinstance(range_z, dict) else range_z
            out[f"low__{metric}"], out[f"high__{metric}"] = usual.expected_range(np.broadcast_to(limit, len(frame)))
    return out.reset_index(drop=True)


class _Usual:
    """A metric's usual value per row (from the scope's earlier weeks): the week's z-score, and
    the range of values whose |z| would stay under a limit."""

    z: np.ndarray

    def expected_range(self, limit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class _RobustUsual(_Usual):
    """Median and MAD on the metric's transformed axis (log1p, Anscombe or as is)."""

    def __init__(self, metric: str, values: pd.Series, past: _PastWindows, min_history: int,
                 items: pd.Series | None = None):
        self.metric = metric
        x = _robust_transform(metric, values).to_numpy(dtype=float)
        self.median, mad, meanad = _trailing_robust(past(x), min_history)
        scale = np.where(mad > 0, 1.4826 * mad, 1.2533 * meanad)
        self.scale = np.maximum(np.nan_to_num(scale, nan=0.0), _SCALE_FLOORS.get(metric, 0.25))
        if items is not None:
            # A median over fewer pull requests than usual is noisier: its spread grows as
            # sqrt(usual count / this week's count). At the demo's size (80 pull requests per
            # repository, a few a week) such weeks made most false alarms. More than usual
            # tightens nothing: the history's spread also holds real week-to-week change.
            n = items.to_numpy(dtype=float)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no history yet
                usual = np.nanmedian(past(n), axis=1)
            self.scale = self.scale * np.sqrt(np.clip(np.nan_to_num(usual / np.maximum(n, 1), nan=1.0), 1.0, None))
        self.z = np.nan_to_num((x - self.median) / self.scale, nan=0.0)

    def expected_range(self, limit):
        low, high = self.median - limit * self.scale, self.median + limit * self.scale
        return _untransform(self.metric, low), _untransform(self.metric, high)


class _ShareUsual(_Usual):
    """A share of a few events (2 failures of 3 deployments) judged by its binomial tail.

    The usual share p0 pools the scope's previous weeks (events / trials); the week's count k
    of n trials gets the tail probability of a count at least that far from n * p0, expressed
    as a signed normal z. A median/MAD on the share itself would call 2 of 3 a 5-sigma event
    when it is a 1-in-25 week.
    """

    def __init__(self, share: pd.Series, denominator: pd.Series, past: _PastWindows, min_history: int):
        from scipy import stats  # imported on use: Dagster loads this module in every run process
        n = denominator.fillna(0).to_numpy(dtype=float)
        k = np.round(share.fillna(0).to_numpy(dtype=float) * n)
        has = share.notna().to_numpy() & (n > 0)
        k_past = np.nansum(past(np.where(has, k, 0.0)), axis=1)
        n_past = np.nansum(past(np.where(has, n, 0.0)), axis=1)
        weeks_past = np.nansum(past(has.astype(float)), axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.p0 = np.clip(k_past / n_past, 0.02, 0.98)
        self.n = n
        self.ok = has & (weeks_past >= min_history) & (n_past > 0)
        self.z = _tail_z(k, self.ok, lambda k_, ok: stats.binom.sf(k_ - 1, n[ok], self.p0[ok]),
                         lambda k_, ok: stats.binom.cdf(k_, n[ok], self.p0[ok]), n * self.p0)

    def expected_range(self, limit):
        from scipy import stats
        low, high = np.full(len(self.n), np.nan), np.full(len(self.n), np.nan)
        ok = self.ok & np.isfinite(limit)
        tail = stats.norm.sf(limit[ok])
        low[ok] = stats.binom.ppf(tail, self.n[ok], self.p0[ok]) / self.n[ok]
        high[ok] = stats.binom.isf(tail, self.n[ok], self.p0[ok]) / self.n[ok]
        return low, high


class _RedeployUsual(_Usual):
    """Deployments per deployment day, judged by the week's redeploys (deployments beyond one a
    day) against the scope's usual rate of them, as a Poisson tail. A ratio on log1p called a
    third deployment on a day a 3-sigma week in a repository that seldom redeploys, and the
    calibration that tamed it then hid real redeploy storms; counts have a known tail."""

    MIN_RATE = 0.5  # a scope that never redeployed: one redeploy is not news, five are

    def __init__(self, frame: pd.DataFrame, past: _PastWindows, min_history: int):
        from scipy import stats
        days = frame["deployment_days"].to_numpy(dtype=float)
        extra = (frame["deployments"] - frame["deployment_days"]).clip(lower=0).to_numpy(dtype=float)
        has = np.isfinite(extra) & (np.nan_to_num(days) > 0)
        history = past(np.where(has, extra, np.nan))
        counts = np.sum(~np.isnan(history), axis=1)
        # The mean of earlier weeks, each capped near the usual (a past storm must not make the
        # next one look ordinary).
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: scopes with no history yet
            median = np.nanmedian(history, axis=1)
            capped = np.minimum(history, (median + 2 * np.sqrt(median) + 2)[:, None])
            rate = np.where(counts > 0, np.nansum(capped, axis=1) / np.maximum(counts, 1), np.nan)
        self.rate = np.maximum(np.nan_to_num(rate, nan=self.MIN_RATE), self.MIN_RATE)
        self.days = days
        self.ok = has & (counts >= min_history)
        self.z = _tail_z(np.nan_to_num(extra), self.ok, lambda k_, ok: stats.poisson.sf(k_ - 1, self.rate[ok]),
                         lambda k_, ok: stats.poisson.cdf(k_, self.rate[ok]), self.rate)

    def expected_range(self, limit):
        from scipy import stats
        low, high = np.full(len(self.days), np.nan), np.full(len(self.days), np.nan)
        ok = self.ok & np.isfinite(limit)
        tail = stats.norm.sf(limit[ok])
        low[ok] = (self.days[ok] + stats.poisson.ppf(tail, self.rate[ok])) / self.days[ok]
        high[ok] = (self.days[ok] + stats.poisson.isf(tail, self.rate[ok])) / self.days[ok]
        return low, high


def _tail_z(k: np.ndarray, ok: np.ndarray, upper, lower, expected: np.ndarray) -> np.ndarray:
    """A signed normal z from the count's tail probability: P(X >= k) above, P(X <= k) below."""
    from scipy import stats
    z = np.zeros(len(k))
    if ok.any():
        kk = k[ok]
        above = kk > expected[ok]
        tail = np.clip(np.where(above, upper(kk, ok), lower(kk, ok)), 1e-12, 0.5)
        z[ok] = np.where(above, 1.0, -1.0) * stats.norm.isf(tail)
    return z


def _usual(metric: str, frame: pd.DataFrame, past: _PastWindows, min_history: int) -> _Usual:
    if metric == DEPLOYS_PER_DAY:
        return _RedeployUsual(frame, past, min_history)
    if metric in SHARE_DENOMINATORS:
        return _ShareUsual(frame[metric], frame[SHARE_DENOMINATORS[metric]], past, min_history)
    items = frame[PULL_REQUEST_COUNT] if metric in PULL_REQUEST_MEDIANS else None
    return _RobustUsual(metric, frame[metric], past, min_history, items)


def _untransform(metric: str, x: np.ndarray) -> np.ndarray:
    """The inverse of `_robust_transform`, clipped at 0 (a range never goes below nothing)."""
    if metric in COUNT_METRICS:
        return np.clip(np.clip(x, 0, None) ** 2 / 4 - 0.375, 0, None)
    if metric in BOUNDED_METRICS:
        return x
    return np.clip(np.expm1(x), 0, None)


class _PastWindows:
    """For rows grouped by scope (contiguous, in week order): each row's previous `window`
    values of the same scope, NaN-padded, as an (n_rows, window) array."""

    def __init__(self, scope_id: np.ndarray, position: np.ndarray, window: int):
        self.scope_id, self.position, self.window = scope_id, position, window
        self.shape = (int(scope_id.max()) + 1, int(position.max()) + 1)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        grid = np.full((self.shape[0], self.shape[1] + self.window), np.nan)
        grid[self.scope_id, self.position + self.window] = x
        windows = np.lib.stride_tricks.sliding_window_view(grid, self.window, axis=1)
        # Window starting at column p covers positions p - window .. p - 1.
        return windows[self.scope_id, self.position]


def _trailing_robust(windows: np.ndarray, min_history: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median, MAD and mean absolute deviation of each row of `windows` (NaN = no value)."""
    n = len(windows)
    counts = np.sum(~np.isnan(windows), axis=1)
    enough = counts >= min_history
    median = np.full(n, np.nan)
    mad = np.full(n, np.nan)
    meanad = np.full(n, np.nan)
    if enough.any():
        w = windows[enough]
        med = np.nanmedian(w, axis=1)
        dev = np.abs(w - med[:, None])
        median[enough] = med
        mad[enough] = np.nanmedian(dev, axis=1)
        meanad[enough] = np.nanmean(dev, axis=1)
    return median, mad, meanad
