"""A user's report: an HTML file and a JSON export. The HTML opens offline: it loads plotly.js
from a copy in its own folder, one per reports folder (inlined, each report weighed 4.8 MB)."""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
from pathlib import Path
from typing import Any

import plotly
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from ghmetrics_dagster.core.settings import private_dir
from ghmetrics_dagster.metrics import contracts
from ghmetrics_dagster.summaries.aggregates import (
    AI_FIGURES,
    CYCLE_STAGES,
    FIVE_METRICS,
    FORECAST_TARGETS,
    FORECAST_WITHHELD,
    TEAM_NOT_PERSON,
    WINDOW_WEEKS,
    SummaryInput,
    anomaly_unit,
    format_value,
)
from ghmetrics_dagster.summaries.prompts import sanitize_untrusted

_TRENDS = (
    ("deployments", "Deployments per week", 1.0),
    ("median_lead_time_hours", "Median lead time (h)", 1.0),
    ("change_failure_rate", "Change fail rate (%)", 100.0),
    ("median_recovery_hours", "Failed deployment recovery time (h)", 1.0),
    ("rework_rate", "Rework rate (%)", 100.0),
    ("median_time_to_restore_hours", "Incident time to restore (h)", 1.0),
)
# How each of the five metrics' 12-week value reads: (unit, scale, format).
_FIVE_VALUES = {
    "lead_time": ("h", 1.0, "{:.1f} h"),
    "deployment_frequency": ("deployment days per week", 1.0, "{:.1f} deployment days per week"),
    "recovery": ("h", 1.0, "{:.1f} h"),
    "change_fail": ("%", 100.0, "{:.1f}%"),
    "rework": ("%", 100.0, "{:.1f}%"),
}


PLOTLY_FILE = f"plotly-{plotly.__version__}.min.js"


def report_stem(login: str) -> str:
    """A file name for the login (GitHub logins are [A-Za-z0-9-], but never trust input)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", login).strip(".") or "user"


def _float(value) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _overall_figure(data: SummaryInput) -> go.Figure:
    """The overall score per week (each week's value is over the 12 weeks ending with it), with
    throughput, stability and the benchmark mean of the overall score."""
    weeks = [row["week_start"] for row in data.weeks]
    fig = go.Figure()
    for field, name, style in (("overall_score", "overall", {"width": 3, "color": "#1f5fa8"}),
                               ("throughput_score", "throughput", {"width": 1.5, "color": "#2a9d8f", "dash": "dot"}),
                               ("stability_score", "stability", {"width": 1.5, "color": "#e76f51", "dash": "dot"})):
        values = [_float(row.get(field)) for row in data.weeks]
        fig.add_trace(go.Scatter(x=weeks, y=values, mode="lines+markers" if field == "overall_score" else "lines",
                                 name=name, line=style))
    benchmark = _float(data.benchmarks.get("overall"))
    if benchmark is not None and weeks:
        fig.add_trace(go.Scatter(x=[weeks[0], weeks[-1]], y=[benchmark, benchmark], mode="lines",
                                 name=f"{contracts.BENCHMARK_EDITION} benchmark, overall",
                                 line={"color": "#888", "dash": "dash"}))
    fig.update_layout(height=320, title_text=f"Overall score (0-10, each week over its trailing {WINDOW_WEEKS} weeks)",
                      margin={"t": 60}, yaxis={"range": [0, 10]}, legend={"orientation": "h", "y": -0.2})
    return fig


def _bar(value: float | None, colour: str) -> str:
    if value is None:
        return ""
    width = max(0.0, min(10.0, value)) * 10
    return f'<span class="bar" style="width:{width:.0f}%;background:{colour}"></span>'


def _scores_html(data: SummaryInput) -> str:
    """DORA's five metrics with their 12-week values and scores, and the headline scores, each
    against the benchmark mean (a bar for the score, a tick for the benchmark)."""
    rows = []

    def row(name: str, shown: str, score, benchmark, strong: bool = False) -> str:
        score, benchmark = _float(score), _float(benchmark)
        tick = (f'<span class="tick" style="left:{max(0.0, min(10.0, benchmark)) * 10:.0f}%" '
                f'title="benchmark {benchmark:.1f}"></span>') if benchmark is not None else ""
        cell = "th" if strong else "td"
        return (f"<tr><{cell}>{html.escape(name)}</{cell}><td>{html.escape(shown)}</td>"
                f"<td class=\"num\">{'–' if score is None else f'{score:.1f}'}</td>"
                f"<td class=\"num\">{'–' if benchmark is None else f'{benchmark:.1f}'}</td>"
                f'<td class="scale">{_bar(score, "#1f5fa8")}{tick}</td></tr>')

    for metric, score, delta in contracts.HEADLINE_SCORES:
        vs = _float(data.latest.get(delta))
        shown = "" if vs is None else f"{vs:+.1f} against the benchmark"
        rows.append(row(metric.capitalize(), shown, data.latest.get(score), data.benchmarks.get(metric), strong=True))
    for metric, value, score, name in FIVE_METRICS:
        _, scale, pattern = _FIVE_VALUES[metric]
        raw = _float(data.latest.get(value))
        shown = "–" if raw is None else pattern.format(raw * scale)
        if metric == "deployment_frequency" and _float(data.latest.get("deployments_per_deployment_day_12w")):
            shown += f", {float(data.latest['deployments_per_deployment_day_12w']):.1f} per deployment day"
        rows.append(row(name[0].upper() + name[1:], shown, data.latest.get(score), data.benchmarks.get(metric)))
    segment = html.escape(sanitize_untrusted(data.benchmark_segment or "benchmark not loaded"))
    return (f'<table class="scores"><tr><th>metric</th><th>last {WINDOW_WEEKS} weeks</th><th>score (0-10)</th>'
            f"<th>{contracts.BENCHMARK_EDITION} benchmark mean ({segment})</th><th></th></tr>{''.join(rows)}</table>")


def _headline_html(data: SummaryInput) -> str:
    overall = _float(data.latest.get("overall_score"))
    if overall is None:
        return "<p>No overall score yet.</p>"
    benchmark = _float(data.benchmarks.get("overall"))
    segment = html.escape(sanitize_untrusted(data.benchmark_segment or ""))
    against = (f" ({contracts.BENCHMARK_EDITION} benchmark, {segment}: {benchmark:.1f})"
               if benchmark is not None else "")
    return f'<p class="headline">Overall <strong>{overall:.1f} / 10</strong>{against}</p>'


def _legacy_html(data: SummaryInput) -> str:
    grades = [f"{html.escape(k.removeprefix('legacy_').removesuffix('_grade').replace('_', ' '))} "
              f"{html.escape(str(v))}" for k, v in data.legacy_grades.items() if v]
    if not grades:
        return ""
    return (f'<p class="meta">DORA 2023 grades (legacy, kept for one release; the scores above replace them): '
            f"{', '.join(grades)}.</p>")


def _trend_figure(data: SummaryInput) -> go.Figure:
    fig = make_subplots(rows=3, cols=2, subplot_titles=[title for _, title, _ in _TRENDS])
    weeks = [row["week_start"] for row in data.weeks]
    for index, (field, title, scale) in enumerate(_TRENDS):
        values = [None if row.get(field) is None else float(row[field]) * scale for row in data.weeks]
        row, col = index // 2 + 1, index % 2 + 1
        fig.add_trace(go.Scatter(x=weeks, y=values, mode="lines+markers", name=title, showlegend=False), row=row, col=col)
        # An anomaly marks the chart of its own metric, in the user's own series, only; the
        # others (uncharted metrics, single repositories) are listed in the table.
        anomaly_weeks = {a.week_start for a in data.anomalies if a.metric == field and a.scope in (None, data.login)}
        flagged = [(w, v) for w, v in zip(weeks, values, strict=False) if w in anomaly_weeks and v is not None]
        if flagged:
            fig.add_trace(
                go.Scatter(
                    x=[w for w, _ in flagged],
                    y=[v for _, v in flagged],
                    mode="markers",
                    marker={"color": "crimson", "size": 13, "symbol": "circle-open", "line": {"width": 3}},
                    name="anomaly (this metric, this week)",
                    legendgroup="anomaly",
                    showlegend=not any(trace.showlegend for trace in fig.data),  # one legend entry
                ),
                row=row,
                col=col,
            )
    fig.update_layout(height=780, title_text="Weekly DORA metrics", margin={"t": 70},
                      showlegend=any(trace.showlegend for trace in fig.data), legend={"orientation": "h", "y": -0.12})
    return fig


def _cycle_figure(data: SummaryInput) -> go.Figure:
    stages = [s for s in CYCLE_STAGES if data.cycle_medians_12w.get(s) is not None]
    fig = go.Figure(
        go.Bar(
            x=[float(data.cycle_medians_12w[s]) for s in stages],
            y=stages,
            orientation="h",
            text=[f"{float(data.cycle_medians_12w[s]):.1f} h" for s in stages],
        )
    )
    fig.update_layout(
        height=300, title_text="Pull-request cycle time, median hours per stage (last 12 weeks)", margin={"t": 60}
    )
    fig.update_yaxes(autorange="reversed")
    return fig


def adoption_figure(data: SummaryInput) -> dict:
    """The adoption curve as plain plotly JSON (the dashboard draws it too): each week's share of
    merged pull requests that were AI-assisted, and Copilot's weekly active users (right axis) per
    organisation that reports them, with the adoption week marked."""
    x = [row["week_start"] for row in data.ai_weeks]
    share = [row["ai_assisted_prs"] / row["merged_prs"] * 100 if row["merged_prs"] else None for row in data.ai_weeks]
    traces: list[dict] = [{
        "type": "scatter", "mode": "lines+markers", "name": "AI-assisted share of merged pull requests", "x": x,
        "y": share, "line": {"color": "#6a3d9a"}, "customdata": [[r["ai_assisted_prs"], r["merged_prs"]] for r in data.ai_weeks],
        "hovertemplate": "%{x}: %{y:.0f} % (%{customdata[0]} of %{customdata[1]})<extra></extra>"}]
    orgs = sorted({row["org"] for row in data.copilot_weeks})
    for org in orgs:
        weeks = [row for row in data.copilot_weeks if row["org"] == org]
        traces.append({"type": "scatter", "mode": "lines", "yaxis": "y2",
                       "name": f"Copilot weekly active users ({org})" if len(orgs) > 1 else "Copilot weekly active users",
                       "x": [row["week_start"] for row in weeks], "y": [_float(row["weekly_active_users"]) for row in weeks],
                       "line": {"color": "#2a9d8f", "dash": "dot"}, "hovertemplate": "%{x}: %{y:.0f} users<extra></extra>"})
    layout: dict[str, Any] = {
        "height": 260, "margin": {"l": 48, "r": 48 if orgs else 12, "t": 8, "b": 36}, "showlegend": True,
        "legend": {"orientation": "h", "y": -0.25}, "xaxis": {"type": "date"},
        "yaxis": {"title": {"text": "% AI-assisted"}, "range": [0, 100]},
    }
    if orgs:
        layout["yaxis2"] = {"title": {"text": "users"}, "overlaying": "y", "side": "right", "rangemode": "tozero",
                            "showgrid": False, "tickformat": ",d"}
    week = data.ai_adoption.get("adoption_week")
    if week and x and x[0] <= week <= x[-1]:
        layout["shapes"] = [{"type": "line", "x0": week, "x1": week, "yref": "paper", "y0": 0, "y1": 1,
                             "line": {"color": "#888", "dash": "dash", "width": 1}}]
        layout["annotations"] = [{"x": week, "y": 1, "yref": "paper", "text": "adoption week", "showarrow": False,
                                  "xanchor": "left", "yanchor": "top", "font": {"size": 11, "color": "#555"}}]
    return {"data": traces, "layout": layout}


def _side_by_side_html(corner: str, groups: list[tuple[str, dict]]) -> str:
    """A table of `groups` (title, figures with merged_prs and is_too_small) side by side; a
    group too small to say anything says so instead of its figures."""
    rows = ["<tr><th>merged pull requests</th>" + "".join(
        f'<td class="num">{int(figures.get("merged_prs") or 0)}</td>' for _, figures in groups) + "</tr>"]
    for index, (field, label, unit) in enumerate(AI_FIGURES):
        cells = []
        for _, figures in groups:
            if figures.get("is_too_small") is not False:
                if index == 0:
                    cells.append(f'<td class="small" rowspan="{len(AI_FIGURES)}">too few pull requests to compare '
                                 f'(n = {int(figures.get("merged_prs") or 0)})</td>')
                continue
            value = _float(figures.get(field))
            cells.append(f'<td class="num">{"–" if value is None else format_value(value, unit)}</td>')
        rows.append(f"<tr><th>{html.escape(label)}</th>{''.join(cells)}</tr>")
    header = "".join(f"<th>{html.escape(title)}</th>" for title, _ in groups)
    return f"<table><tr><th>{html.escape(corner)}</th>{header}</tr>{''.join(rows)}</table>"


def adoption_sentence(data: SummaryInput) -> str | None:
    """When the scope's AI-assisted share first reached the adoption share (the dashboard says it too)."""
    week, share = data.ai_adoption.get("adoption_week"), _float(data.ai_adoption.get("adoption_week_share"))
    if not week or share is None:
        return None
    return (f"AI-assisted pull requests first reached {share * 100:.0f} % of the week's merged pull requests "
            f"in the week of {week}.")


def _ai_html(data: SummaryInput) -> str:
    """AI-assisted pull requests and the others side by side over the last 12 weeks, and all
    pull requests before and after the adoption week (docs/ai.md)."""
    if not data.ai_cohorts:
        return "<p>No AI-assisted pull request figures yet.</p>"
    titles = {"ai_assisted": "AI-assisted", "other": "other"}
    cohorts = _side_by_side_html(f"last {WINDOW_WEEKS} weeks",
                                 [(titles[cohort], figures) for cohort, figures in data.ai_cohort_groups.items()])
    periods = ""
    sentence, windows = adoption_sentence(data), data.ai_adoption_windows
    if sentence and windows:
        periods = (f"<p>{html.escape(sentence)} All pull requests in the {data.ai_adoption.get('window_weeks')} "
                   "weeks before that week and in as many from it on:</p>"
                   + _side_by_side_html("around adoption", [("before", windows["before"]),
                                                            ("from it on", windows["after"])]))
    return (f"{cohorts}{periods}<p class=\"meta\">The groups differ in more than AI (who wrote them, what they "
            "changed, when): a difference is not proof that AI caused it.</p>")


def _summary_html(text: str) -> str:
    # Markdown-light: paragraphs and **bold**, everything else escaped.
    out = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        escaped = html.escape(paragraph)
        escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
        out.append("<p>" + escaped.replace("\n", "<br>") + "</p>")
    return "\n".join(out)


def _reading(value: float | None, metric: str) -> str:
    if value is None:
        return ""
    unit = anomaly_unit(metric)
    return f"{value * 100:.0f} %" if unit == "ratio" else f"{value:.1f} h" if unit == "hours" else f"{value:.3g}"


def _bottleneck_html(data: SummaryInput) -> str:
    stage, share = data.bottleneck.get("dominant_stage"), data.bottleneck.get("dominant_share_12w")
    if stage is None or share is None:
        return ""
    earlier, recent = data.bottleneck.get("dominant_share_earlier_6w"), data.bottleneck.get("dominant_share_recent_6w")
    change = (f" ({earlier * 100:.0f} % in the first 6 of those weeks, {recent * 100:.0f} % in the last 6)"
              if earlier is not None and recent is not None else "")
    return (f"<p><strong>Bottleneck: {html.escape(stage)}</strong> takes {share * 100:.0f} % of the time from first "
            f"commit to production over the last {WINDOW_WEEKS} weeks{change}.</p>")


def _forecast_html(data: SummaryInput) -> str:
    items = []
    level = data.predictions.get("interval_level")
    for target in FORECAST_TARGETS:
        key, name = target.column, target.name.capitalize()
        unit = " / 10" if target.unit == "score10" else " h"
        value, status = data.predictions.get(key), data.forecast_status.get(target.short)
        if value is None:
            if status in FORECAST_WITHHELD:
                items.append(f"<li>{name}: no forecast shown, {html.escape(FORECAST_WITHHELD[status])}.</li>")
            continue
        low, high = data.predictions.get(f"{key}_low"), data.predictions.get(f"{key}_high")
        interval = (f", likely between {low:.1f} and {high:.1f}{unit} ({level * 100:.0f} % interval)"
                    if low is not None and high is not None and level is not None else "")
        items.append(f"<li>{name}: {value:.1f}{unit}{interval}.</li>")
    return f"<ul>{''.join(items)}</ul>" if items else "<p>No forecast yet.</p>"


def render_html(data: SummaryInput, summary: dict) -> str:
    login = html.escape(sanitize_untrusted(data.login))
    overall = pio.to_html(_overall_figure(data), full_html=False, include_plotlyjs=False)
    trends = pio.to_html(_trend_figure(data), full_html=False, include_plotlyjs=False)
    cycle = pio.to_html(_cycle_figure(data), full_html=False, include_plotlyjs=False)
    adoption = ""
    if data.ai_weeks:
        figure = go.Figure(adoption_figure(data)).update_layout(
            height=320, margin={"t": 60}, title_text="AI adoption: share of merged pull requests AI-assisted per week")
        adoption = pio.to_html(figure, full_html=False, include_plotlyjs=False)
    charted = {field for field, _, _ in _TRENDS}
    anomaly_rows = "".join(
        f"<tr><td>{html.escape(a.week_start)}</td><td>{html.escape(sanitize_untrusted(a.scope or ''))}</td>"
        f"<td>{html.escape(sanitize_untrusted(a.metric))}{'' if a.metric in charted else ' (not charted)'}</td>"
        f"<td class=\"num\">{_reading(a.observed, a.metric)}</td>"
        f"<td class=\"num\">{_reading(a.expected_low, a.metric)} – {_reading(a.expected_high, a.metric)}</td>"
        f"<td class=\"num\">{'' if a.z is None else f'{a.z:+.1f}'}</td></tr>"
        for a in data.anomalies
    ) or '<tr><td colspan="6">No anomalies flagged in the last 12 weeks.</td></tr>'
    source = (
        f"{html.escape(summary['provider'])} / {html.escape(summary['model'])}, "
        f"cost ${summary['cost_usd']:.6f}{', from cache' if summary.get('cache_hit') else ''}"
        f"{'' if summary.get('grounded') else ', NOT grounded'}"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>ghmetrics report: {login}</title>
<script src="{PLOTLY_FILE}"></script>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
.summary {{ background: #f5f7fa; border-left: 4px solid #3b6fd8; padding: .5em 1em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .3em .8em; }}
.meta {{ color: #666; font-size: .9em; }}
.headline {{ font-size: 1.3em; }}
.team {{ border-left: 4px solid #888; padding: .3em .8em; background: #fafafa; }}
td.num {{ text-align: right; }}
.side-by-side {{ display: flex; flex-wrap: wrap; gap: 1em; }} .side-by-side > div {{ flex: 1 1 480px; min-width: 0; }}
td.scale {{ position: relative; width: 220px; }}
.bar {{ display: inline-block; height: .8em; }}
.tick {{ position: absolute; top: .15em; bottom: .15em; width: 2px; background: #222; }}
</style></head>
<body>
<h1>Engineering metrics for {login}</h1>
<p class="meta">Week starting {html.escape(str(data.week_start))}; generated {html.escape(summary.get('generated_at', ''))}</p>
<h2>Summary</h2>
<div class="summary">{_summary_html(summary['text'])}</div>
<p class="meta">Written by {source}.</p>
{f'<p class="meta">{html.escape(data.scope_note)}</p>' if data.scope_note else ''}
<h2>DORA's software delivery metrics (last {WINDOW_WEEKS} weeks)</h2>
{_headline_html(data)}
<p class="team">{html.escape(TEAM_NOT_PERSON)}</p>
{_scores_html(data)}
<p class="meta">Scores follow DORA's Quick Check (0 to 10, higher is better): the bar is the score, the tick
the benchmark mean. Throughput is the mean of lead time, deployment frequency and recovery; stability of change
fail rate and rework rate; overall of all five. Incident time to restore is shown below under its own name: it
is not failed deployment recovery time.</p>
{_legacy_html(data)}
<div class="side-by-side"><div>{overall}</div><div>{adoption}</div></div>
<h2>AI-assisted pull requests against the others</h2>
{_ai_html(data)}
<h2>Weekly trends</h2>{trends}
<h2>Cycle-time breakdown</h2>{cycle}
{_bottleneck_html(data)}
<h2>Next week's forecast</h2>
{_forecast_html(data)}
<h2>Anomalies</h2>
<p class="meta">Each flagged week's driving metric: the observed value, the range the scope's own earlier weeks
make usual, and its robust z-score against them (|z| of 3.25 or more flags; such a week comes less than once in
850 ordinary weeks).</p>
<table><tr><th>week</th><th>where</th><th>metric</th><th>observed</th><th>expected</th><th>z</th></tr>{anomaly_rows}</table>
</body></html>
"""


def shared_plotly_js(directory: Path) -> Path:
    """The folder's one copy of plotly.js that its reports load (written once per version)."""
    path = directory / PLOTLY_FILE
    if not path.exists():
        source = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
            handle.write(source.read_bytes())
        tmp.replace(path)  # atomic: two summaries written at once each write a whole file
    return path


def write_report(data: SummaryInput, summary: dict, directory: str | Path) -> tuple[Path, Path]:
    """Writes <login>.html and <login>.json under `directory`; returns both paths."""
    directory = Path(directory)
    # Reports hold a person's metrics: owner only.
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_dir(directory)
    summary = dict(summary)
    summary.setdefault("generated_at", dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    shared_plotly_js(directory)
    stem = report_stem(data.login)
    html_path, json_path = directory / f"{stem}.html", directory / f"{stem}.json"
    # Write then rename, so a reader never sees half a file.
    for path, content in (
        (html_path, render_html(data, summary)),
        (json_path, json.dumps({"aggregates": data.to_dict(), "summary": summary}, indent=2, default=str)),
    ):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.unlink(missing_ok=True)
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as handle:
            handle.write(content)
        tmp.replace(path)
    return html_path, json_path
