"""A user's report: an HTML file and a JSON export. The HTML opens offline: it loads plotly.js
from a copy in its own folder, one per reports folder (inlined, each report weighed 4.8 MB)."""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
from pathlib import Path

import plotly
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from ghmetrics_dagster.llm.aggregates import CYCLE_STAGES, SummaryInput
from ghmetrics_dagster.settings import private_dir
from ghmetrics_dagster.llm.prompts import sanitize_untrusted

_TRENDS = (
    ("deployments", "Deployments per week", 1.0),
    ("median_lead_time_hours", "Median lead time (h)", 1.0),
    ("change_failure_rate", "Change failure rate (%)", 100.0),
    ("median_time_to_restore_hours", "Median time to restore (h)", 1.0),
)


PLOTLY_FILE = f"plotly-{plotly.__version__}.min.js"


def report_stem(login: str) -> str:
    """A file name for the login (GitHub logins are [A-Za-z0-9-], but never trust input)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", login).strip(".") or "user"


def _trend_figure(data: SummaryInput) -> go.Figure:
    fig = make_subplots(rows=2, cols=2, subplot_titles=[title for _, title, _ in _TRENDS])
    weeks = [row["week_start"] for row in data.weeks]
    for index, (field, title, scale) in enumerate(_TRENDS):
        values = [None if row.get(field) is None else float(row[field]) * scale for row in data.weeks]
        row, col = index // 2 + 1, index % 2 + 1
        fig.add_trace(go.Scatter(x=weeks, y=values, mode="lines+markers", name=title, showlegend=False), row=row, col=col)
        # An anomaly marks the chart of its own metric, in the user's own series, only; the
        # others (uncharted metrics, single repositories) are listed in the table.
        anomaly_weeks = {a.week_start for a in data.anomalies if a.metric == field and a.scope in (None, data.login)}
        flagged = [(w, v) for w, v in zip(weeks, values) if w in anomaly_weeks and v is not None]
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
    fig.update_layout(height=560, title_text="Weekly DORA metrics", margin={"t": 70},
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


def _summary_html(text: str) -> str:
    # Markdown-light: paragraphs and **bold**, everything else escaped.
    out = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        escaped = html.escape(paragraph)
        escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
        out.append("<p>" + escaped.replace("\n", "<br>") + "</p>")
    return "\n".join(out)


def render_html(data: SummaryInput, summary: dict) -> str:
    login = html.escape(sanitize_untrusted(data.login))
    trends = pio.to_html(_trend_figure(data), full_html=False, include_plotlyjs=False)
    cycle = pio.to_html(_cycle_figure(data), full_html=False, include_plotlyjs=False)
    charted = {field for field, _, _ in _TRENDS}
    anomaly_rows = "".join(
        f"<tr><td>{html.escape(a.week_start)}</td><td>{html.escape(sanitize_untrusted(a.scope or ''))}</td>"
        f"<td>{html.escape(sanitize_untrusted(a.metric))}{'' if a.metric in charted else ' (not charted)'}</td>"
        f"<td>{'' if a.anomaly_score is None else f'{a.anomaly_score:.2f}'}</td></tr>"
        for a in data.anomalies
    ) or '<tr><td colspan="4">No anomalies flagged in the last 12 weeks.</td></tr>'
    grades = "".join(
        f"<li>{html.escape(k.removesuffix('_grade').replace('_', ' '))}: <b>{html.escape(str(v))}</b></li>"
        for k, v in data.grades.items()
        if v
    )
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
</style></head>
<body>
<h1>Engineering metrics for {login}</h1>
<p class="meta">Week starting {html.escape(str(data.week_start))}; generated {html.escape(summary.get('generated_at', ''))}</p>
<h2>Summary</h2>
<div class="summary">{_summary_html(summary['text'])}</div>
<p class="meta">Written by {source}.</p>
{f'<p class="meta">{html.escape(data.scope_note)}</p>' if data.scope_note else ''}
<h2>Grades (trailing 12 weeks)</h2><ul>{grades or '<li>No grades yet.</li>'}</ul>
<h2>Weekly trends</h2>{trends}
<h2>Cycle-time breakdown</h2>{cycle}
<h2>Anomalies</h2>
<p class="meta">The detector's score is the week's deviation over its flagging threshold: 1.00 flags a week, higher is more unusual.</p>
<table><tr><th>week</th><th>where</th><th>metric</th><th>score</th></tr>{anomaly_rows}</table>
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
    summary.setdefault("generated_at", dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
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
