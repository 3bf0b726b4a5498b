"""What a reviewer sees on a model version in MLflow: charts, and what changed against the champion."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml import backtest
from ml import features as F

TITLES = {F.LEAD_TIME: "median lead time (hours)", F.SCORE: "overall score (0-10)"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no screen: render to files
    import matplotlib.pyplot as plt

    return plt


def backtest_figures(tested: backtest.Backtest, max_scopes: int = 6) -> dict:
    """Per target: forecast vs actual at each rolling origin for the scopes with the most
    weeks, with the conformal interval and the naive forecast."""
    plt = _pyplot()
    figures = {}
    predictions = tested.predictions
    scopes = (predictions.groupby(["scope_type", "scope"]).size().sort_values(ascending=False)
              .head(max_scopes).index.tolist())
    for target, result in tested.targets.items():
        columns = 3
        rows = max(1, int(np.ceil(len(scopes) / columns)))
        figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False,
                                    sharex=True)
        for ax, (scope_type, scope) in zip(axes.flat, scopes, strict=False):
            part = predictions[(predictions["scope_type"] == scope_type) & (predictions["scope"] == scope)]
            part = part.sort_values("origin")
            x = pd.to_datetime(part["origin"])
            ax.fill_between(x, part[f"low_{target}"], part[f"high_{target}"], alpha=0.25, color="tab:blue",
                            label=f"{tested.level:.0%} interval")
            ax.plot(x, part[f"actual_{target}"], "o-", color="black", label="actual")
            ax.plot(x, part[f"predicted_{target}"], "s--", color="tab:blue", label="forecast")
            ax.plot(x, part[f"naive_{target}"], ":", color="tab:gray", label="naive (last week)")
            ax.set_title(f"{scope}", fontsize=9)
            ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        for ax in list(axes.flat)[len(scopes):]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=7)
        verdict = "published" if result.published else "not published (no better than naive)"
        figure.suptitle(f"{TITLES[target]}: rolling-origin backtest, MASE {result.mase:.3f} ({verdict}), "
                        f"interval coverage {result.interval_coverage:.0%} of {result.covered_rows} forecasts")
        figure.tight_layout()
        figures[f"backtest_{backtest.SHORT_NAMES[target]}.png"] = figure
    return figures


def precision_recall_figures(curve: pd.DataFrame, label_source: str) -> dict:
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(5, 4))
    ax.plot(curve["recall"], curve["precision"], "o-", markersize=3)
    line = curve[curve["cutoff"] == 1.0]
    if not line.empty:
        ax.plot(line["recall"], line["precision"], "r*", markersize=12, label="the model's flagging line")
        ax.legend(fontsize=8)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    source = {"labels": "labelled", "injected": "injected (synthetic)"}.get(label_source, label_source)
    ax.set_title(f"anomaly model on {source} anomalies (repository-weeks)", fontsize=9)
    figure.tight_layout()
    return {"precision_recall.png": figure}


def close(figures: dict | None) -> None:
    if figures:
        plt = _pyplot()
        for figure in figures.values():
            plt.close(figure)


def what_changed(mlflow_client, champ, old_features: list[str] | None, params: dict, feature_names: list[str],
                 metrics: dict[str, float], tags: dict) -> str:
    """Lines for the version's description: data, parameters, features and metrics against the
    champion's (empty when there is no champion)."""
    if champ is None:
        return ""
    lines = []
    old_tags = champ.tags or {}
    lines.append(f"- data: up to {tags.get('data_watermark')} ({tags.get('sample_count')} scope-weeks); the champion "
                 f"v{champ.version} saw up to {old_tags.get('data_watermark', '?')} "
                 f"({old_tags.get('sample_count', '?')} scope-weeks)")
    try:
        run = mlflow_client.get_run(champ.run_id) if champ.run_id else None
    except Exception:  # noqa: BLE001 - a deleted run must not stop a training
        run = None
    if run is None:
        return "\n".join(lines)
    old_params = run.data.params
    differ = [f"{k} {old_params[k]} -> {v}" for k, v in sorted(params.items())
              if k in old_params and old_params[k] != str(v)]
    lines.append("- parameters: " + ("; ".join(differ) if differ else "unchanged"))
    if old_features is not None:
        added = sorted(set(feature_names) - set(old_features))
        removed = sorted(set(old_features) - set(feature_names))
        lines.append(f"- features: {len(feature_names)} (+{len(added)} -{len(removed)})"
                     + (f"; added {', '.join(added[:8])}" if added else "")
                     + (f"; removed {', '.join(removed[:8])}" if removed else ""))
    old_metrics = run.data.metrics
    moved = [f"{k} {old_metrics[k]:.3f} -> {v:.3f}" for k, v in sorted(metrics.items())
             if k in old_metrics and np.isfinite(v) and (k.startswith(("mase", "interval_coverage", "precision",
                                                                          "recall", "f1")))]
    if moved:
        lines.append("- its own evaluation against the champion's own (different weeks): " + "; ".join(moved))
    return "\n".join(lines)
