"""The report as one self-contained HTML page: inline CSS and SVG, no script, nothing fetched.

The Content-Security-Policy forbids every network load and every script, so the page opens
offline exactly as it renders here, and a ledger value that slipped past escaping could still not
run or load anything. Values from the ledger are user data (task ids, agent names): each goes
through `esc` before it reaches the page.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from .data import CostCell, ReportData
from .svg import OTHER_COLOUR, PALETTE, Series, Spread, empty_chart, esc, horizontal_bars, spread_rows, stacked_bars

# Agents drawn with their own colour in the cost chart; the rest are stacked as "other agents".
CHART_AGENTS = len(PALETTE)
NONE = "(none)"

_CSS = """
:root { color-scheme: light; --muted: #666; --line: #ddd; --accent: #4e79a7; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", "Liberation Sans", sans-serif;
       color: #1d1d1d; background: #fafafa; margin: 0; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--accent); }
p.meta, .muted { color: var(--muted); }
.muted { fill: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; margin: 18px 0 8px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
.card dt { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
.card dd { margin: 2px 0 0; font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card dd small { font-size: 12px; font-weight: 400; color: var(--muted); }
.card dd small.sub { display: block; }
.note { background: #fff8e6; border-left: 4px solid #edc948; padding: 8px 12px; margin: 10px 0; }
svg.chart { display: block; margin: 8px 0 12px; font-size: 12px; }
svg .tick { fill: #555; font-size: 11px; }
svg .label, svg .legend { fill: #222; font-size: 12px; }
svg text.note { fill: #b8860b; font-weight: 700; font-size: 14px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; background: #f4f4f4; }
td.num, th.num { text-align: right; white-space: nowrap; }
td.id { font-family: "DejaVu Sans Mono", ui-monospace, monospace; font-size: 12px; overflow-wrap: anywhere;
        min-width: 12ch; }
td.when { white-space: nowrap; }
.unknown { color: #a36b00; }
details { margin: 6px 0; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
@media print { body { background: #fff; } main { padding: 0; } h2 { break-after: avoid; }
               svg, tr { break-inside: avoid; } }
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def usd(value: float) -> str:
    """At least three significant digits (costs are often fractions of a cent), two decimals at least."""
    if value == 0:
        return "$0.00"
    decimals = max(2, 2 - math.floor(math.log10(abs(value))))
    return f"${value:,.{decimals}f}"


def when(stamp: str | None) -> str:
    """An ISO timestamp to the second (the column says UTC); anything else as it is."""
    if stamp is None:
        return NONE
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return stamp


def seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f} s"


def count(value: int) -> str:
    return f"{value:,}"


def percent(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "–"


def label(value: str | None) -> str:
    return NONE if value is None else value


def _exact(value: float) -> str:
    """The unrounded cost for the tooltip (repr: the shortest text that reads back as the same float)."""
    return f"{value!r} USD"


def _cost_cell(cell: CostCell) -> str:
    """Spend of the priced calls; calls without a price are said, never added as $0."""
    if cell.priced_calls == 0 and cell.unknown_calls:
        return '<td class="num cost unknown" title="no call here has a known cost">unknown</td>'
    return f'<td class="num cost" title="{esc(_exact(cell.cost_usd))}">{esc(usd(cell.cost_usd))}</td>'


def _unknown_cell(cell: CostCell) -> str:
    css = "num unknown-calls unknown" if cell.unknown_calls else "num unknown-calls"
    return f'<td class="{css}">{count(cell.unknown_calls)}</td>'


def _window(data: ReportData) -> str:
    if data.since is not None:
        start = datetime.fromtimestamp(data.since, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return f"calls since {start}"
    return "every call in the ledger"


def _cards(data: ReportData) -> str:
    unknown = data.total.unknown_calls
    cards = [
        ("Calls", f'<span id="total-calls">{count(data.calls)}</span>'),
        ("Errors", f'<span id="total-errors">{count(data.errors)}</span> '
                   f'<small id="error-rate">{esc(percent(data.errors, data.calls))}</small>'),
        ("Spend", f'<span id="total-cost" title="{esc(_exact(data.total.cost_usd))}">'
                  f'{esc(usd(data.total.cost_usd))}</span> '
                  f'<small class="sub">of <span id="priced-calls">{count(data.total.priced_calls)}</span>'
                  f' priced calls</small>'),
        ("Cost unknown", f'<span id="unknown-cost-calls" class="{"unknown" if unknown else ""}">{count(unknown)}'
                         f'</span> <small class="sub">calls, not in the spend</small>'),
        ("Tokens in / out", f'<span id="prompt-tokens">{count(data.prompt_tokens)}</span> <small>/</small> '
                            f'<span id="completion-tokens">{count(data.completion_tokens)}</span>'),
        ("Retried calls", f'<span id="retried-calls">{count(data.retried_calls)}</span>'),
    ]
    items = "".join(f'<div class="card"><dt>{name}</dt><dd>{value}</dd></div>' for name, value in cards)
    return f'<dl class="cards">{items}</dl>'


def _unknown_note(data: ReportData) -> str:
    unknown = data.total.unknown_calls
    if not unknown:
        return ""
    parts = []
    if data.unknown_unpriced:
        parts.append(f"{count(data.unknown_unpriced)} with usage but no price for the model (a local model, or "
                     f"one genai-prices does not know)")
    if data.unknown_no_usage:
        parts.append(f"{count(data.unknown_no_usage)} failed before the provider reported any usage")
    return (f'<p class="note" id="unknown-note"><strong>{count(unknown)} of {count(data.calls)} calls have no known '
            f'cost</strong>: {esc("; ".join(parts))}. They are shown as <em>unknown</em> and are not counted in any '
            f'spend on this page, so the spend shown is what the priced calls cost, not a total.</p>')


def _cost_section(data: ReportData) -> str:
    chart_agents = [a for a in data.agents if data.cost_by_agent[a].cost_usd > 0][:CHART_AGENTS]
    others = [a for a in data.agents if a not in chart_agents]
    series = [Series(label(a), PALETTE[i], [data.cost_by_day_agent.get((d, a), CostCell()).cost_usd
                                            for d in data.days])
              for i, a in enumerate(chart_agents)]
    if others:
        series.append(Series(f"other agents ({len(others)})", OTHER_COLOUR,
                             [sum(data.cost_by_day_agent.get((d, a), CostCell()).cost_usd for a in others)
                              for d in data.days]))
    notes = {i: f"{data.cost_by_day[d].unknown_calls} calls with unknown cost (not drawn)"
             for i, d in enumerate(data.days) if data.cost_by_day[d].unknown_calls}
    if data.total.cost_usd > 0:
        chart = stacked_bars(data.days, series, title="Spend of priced calls per day (UTC), by agent",
                             value_format=usd, notes=notes, tick_prefix="$")
    else:
        chart = empty_chart("No priced spend in this window.")
    rows = []
    for day in data.days:
        for agent in data.agents:
            cell = data.cost_by_day_agent.get((day, agent))
            if cell is None:
                continue
            rows.append(f'<tr><td class="day">{esc(day)}</td><td class="agent">{esc(label(agent))}</td>'
                        f'<td class="num calls">{count(cell.calls)}</td>{_cost_cell(cell)}{_unknown_cell(cell)}</tr>')
    agent_rows = "".join(
        f'<tr><td class="agent">{esc(label(a))}</td><td class="num calls">{count(c.calls)}</td>{_cost_cell(c)}'
        f'{_unknown_cell(c)}</tr>' for a in data.agents for c in [data.cost_by_agent[a]])
    head = '<th class="num">calls</th><th class="num">spend</th><th class="num">cost unknown (calls)</th>'
    note = ('<p class="muted">A <strong style="color:#b8860b">?</strong> above a bar marks a day with calls whose '
            'cost is unknown.</p>' if notes and data.total.cost_usd > 0 else "")
    return (f'<section id="cost"><h2>Cost per day and agent</h2>{chart}{note}'
            f'<h3>Per agent</h3><table id="cost-by-agent"><thead><tr><th>agent</th>{head}</tr></thead>'
            f'<tbody>{agent_rows}</tbody></table>'
            f'<details{" open" if len(rows) <= 40 else ""}><summary>Per day and agent ({len(rows)} rows)</summary>'
            f'<table id="cost-by-day"><thead><tr><th>day (UTC)</th><th>agent</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></details></section>')


def _latency_section(data: ReportData) -> str:
    measured = [m for m in data.latency if m.latencies]
    if measured:
        chart = spread_rows(
            [Spread(f"{label(m.provider)} · {label(m.model)}", m.latencies[0], m.quantile(0.5) or 0.0,
                    m.quantile(0.95) or 0.0, m.quantile(0.99) or 0.0, m.latencies[-1]) for m in measured],
            title="Latency per model (whole call, retries included)", value_format=seconds, tick_suffix=" s")
    else:
        chart = empty_chart("No latencies recorded in this window.")
    rows = "".join(
        f'<tr><td class="provider">{esc(label(m.provider))}</td><td class="model">{esc(label(m.model))}</td>'
        f'<td class="num calls">{count(m.calls)}</td><td class="num errors">{count(m.errors)}</td>'
        f'<td class="num error-rate">{esc(percent(m.errors, m.calls))}</td>'
        f'<td class="num retries">{count(m.retries)}</td>'
        f'<td class="num p50">{seconds(m.quantile(0.5))}</td><td class="num p95">{seconds(m.quantile(0.95))}</td>'
        f'<td class="num p99">{seconds(m.quantile(0.99))}</td>'
        f'<td class="num max">{seconds(m.latencies[-1] if m.latencies else None)}</td></tr>' for m in data.latency)
    return (f'<section id="latency"><h2>Latency per model</h2>{chart}'
            f'<table id="latency-by-model"><thead><tr><th>provider</th><th>model</th><th class="num">calls</th>'
            f'<th class="num">errors</th><th class="num">error rate</th><th class="num">retries</th>'
            f'<th class="num">p50</th><th class="num">p95</th><th class="num">p99</th><th class="num">max</th>'
            f'</tr></thead><tbody>{rows}</tbody></table>'
            f'<p class="muted">Latency is the whole call as the caller saw it (<code>execution_time_seconds</code>), '
            f'retries and failures included; percentiles interpolate linearly between observed values, as '
            f'<code>llm-exec stats</code> does.</p></section>')


def _errors_section(data: ReportData) -> str:
    if not data.errors_by_type:
        return '<section id="errors"><h2>Errors</h2><p id="no-errors">No failed calls in this window.</p></section>'
    chart = horizontal_bars(data.errors_by_type, title="Failed calls by error type",
                            value_format=lambda v: count(int(v)))
    by_type = "".join(f'<tr><td class="error-type">{esc(kind)}</td><td class="num calls">{count(n)}</td>'
                      f'<td class="num share">{esc(percent(n, data.errors))}</td>'
                      f'<td class="num of-calls">{esc(percent(n, data.calls))}</td></tr>'
                      for kind, n in data.errors_by_type)
    by_model = "".join(f'<tr><td class="provider">{esc(label(p))}</td><td class="model">{esc(label(m))}</td>'
                       f'<td class="error-type">{esc(kind)}</td><td class="num calls">{count(n)}</td></tr>'
                       for p, m, kind, n in data.errors_by_model)
    return (f'<section id="errors"><h2>Errors</h2>{chart}'
            f'<table id="errors-by-type"><thead><tr><th>error type</th><th class="num">calls</th>'
            f'<th class="num">share of errors</th><th class="num">share of all calls</th></tr></thead>'
            f'<tbody>{by_type}</tbody></table>'
            f'<h3>By provider and model</h3><table id="errors-by-model"><thead><tr><th>provider</th><th>model</th>'
            f'<th>error type</th><th class="num">calls</th></tr></thead><tbody>{by_model}</tbody></table></section>')


def _top_section(data: ReportData) -> str:
    if not data.top_tasks:
        body = '<p id="no-top-tasks">No priced call in this window.</p>'
    else:
        rows = "".join(
            f'<tr><td class="num rank">{i}</td><td class="id task-id">{esc(label(t.task_id))}</td>'
            f'<td class="agent">{esc(label(t.agent))}</td><td class="model">{esc(label(t.provider))} · '
            f'{esc(label(t.model))}</td>'
            f'<td class="when" title="{esc(label(t.timestamp))}">{esc(when(t.timestamp))}</td>'
            f'<td class="status">{esc(label(t.status))}</td>'
            f'<td class="num tokens">{"–" if t.tokens is None else count(t.tokens)}</td>'
            f'<td class="num latency">{seconds(t.latency_seconds)}</td>'
            f'<td class="num cost" title="{esc(_exact(t.cost_usd))}">{esc(usd(t.cost_usd))}</td></tr>'
            for i, t in enumerate(data.top_tasks, 1))
        body = (f'<table id="top-tasks"><thead><tr><th class="num">#</th><th>task id</th><th>agent</th>'
                f'<th>provider · model</th><th>time (UTC)</th><th>status</th><th class="num">tokens</th>'
                f'<th class="num">latency</th><th class="num">cost</th></tr></thead><tbody>{rows}</tbody></table>')
    unranked = data.total.unknown_calls
    extra = (f'<p class="muted" id="unranked">{count(unranked)} calls with unknown cost are not ranked.</p>'
             if unranked else "")
    return f'<section id="top"><h2>Most expensive calls</h2>{body}{extra}</section>'


def render_html(data: ReportData) -> str:
    generated = data.generated_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    span = f"{data.first_day} to {data.last_day}" if data.first_day else "no calls"
    if data.calls:
        sections = _cards(data) + _unknown_note(data) + "".join(
            [_cost_section(data), _latency_section(data), _errors_section(data), _top_section(data)])
    else:
        sections = '<p id="empty" class="note">No calls in the ledger for this window.</p>'
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'  # else a browser asks for /favicon.ico
        f'<title>llm-exec usage report, {esc(span)}</title><style>{_CSS}</style></head>'
        f'<body><main><h1>llm-exec usage report</h1>'
        f'<p class="meta">{esc(_window(data))} · {esc(span)} · from <code>{esc(data.source)}</code> · '
        f'generated {esc(generated)}</p>{sections}'
        '<footer>Made by <code>llm-exec report</code> from the usage ledger. Days are UTC. Spend is genai-prices\' '
        'price for the usage each provider reported; a cached answer costs $0.00.</footer></main></body></html>\n'
    )
