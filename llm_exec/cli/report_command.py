"""`llm-exec report`: read the usage ledger, write the HTML report (llm_exec/report/)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import click


@click.command("report", epilog="""\b
Example:
  llm-exec report --since-days 7 -o week.html   # the last 7 days, opens offline in any browser
  llm-exec report -o - | gzip > report.html.gz  # '-' writes to stdout""")
@click.option("--since-days", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Only calls from the last N days (default: the whole ledger).")
@click.option("-o", "--output", default="report.html", show_default=True, metavar="FILE",
              help="Where to write the HTML ('-' for stdout).")
def report(since_days: float | None, output: str) -> None:
    """Write the usage ledger as one self-contained HTML page: spend per day and agent, latency
    per model (p50/p95/p99), errors by type and the most expensive calls.

    Calls whose cost is unknown (no price for the model) are counted apart, never as $0. The page
    loads nothing from the network and runs no script. Reads the store configured by
    LLM_EXEC_STATE_URL / LLM_EXEC_STATE_DIR.
    """
    from ..report import build_report_data, render_html
    from ..state import StateUnavailable, open_store

    now = time.time()
    since = now - since_days * 86400 if since_days else None
    try:
        store = open_store()
        rows = store.ledger_rows(since)
    except StateUnavailable as exc:
        click.echo(f"llm-exec report: state store unavailable: {exc}", err=True)
        sys.exit(2)
    page = render_html(build_report_data(rows, source=store.location, since=since, now=now))
    if output == "-":
        sys.stdout.write(page)
        return
    try:
        _write_atomically(Path(output), page)
    except OSError as exc:
        click.echo(f"llm-exec report: cannot write {output}: {exc.strerror or exc}", err=True)
        sys.exit(2)
    click.echo(f"llm-exec report: {len(rows)} calls from {store.location} -> {output}", err=True)


def _write_atomically(path: Path, content: str) -> None:
    # A reader (a browser refreshing, a CI artifact upload) never sees half a page.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
