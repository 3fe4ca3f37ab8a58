"""`llm-exec metrics [--serve]`: Prometheus metrics computed from the usage ledger (the work is in
llm_exec/telemetry/_metrics_ledger.py)."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import click

EPILOG = """\b
Examples:
  llm-exec metrics                                   # print them once (Prometheus text format)
  llm-exec metrics --serve                           # scrape http://127.0.0.1:9464/metrics
  LLM_EXEC_STATE_URL=redis://redis:6379/0 llm-exec metrics --serve --host 0.0.0.0 --port 9464
                                                     # one view of a fleet sharing Redis
"""


@click.command(epilog=EPILOG)
@click.option("--serve", is_flag=True, help="Serve them over HTTP for Prometheus to scrape, until SIGINT/SIGTERM.")
@click.option("--port", type=click.IntRange(0, 65535), default=9464, show_default=True,
              help="Port to listen on with --serve (0: any free one, printed on stderr).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on with --serve (0.0.0.0: every interface).")
def metrics(serve: bool, port: int, host: str) -> None:
    """Prometheus metrics of every call in the usage ledger: token usage and operation duration
    (OpenTelemetry GenAI names), cost, requests, retries, and each circuit breaker's state.

    Reads the store configured by LLM_EXEC_STATE_URL / LLM_EXEC_STATE_DIR, so every process and
    machine sharing it is in one view. Each scrape reads only the rows added since the last one.
    """
    from ..config import Secrets
    from ..state import StateUnavailable, open_store
    from ..telemetry._metrics_ledger import LedgerView, exposition, make_server

    view = LedgerView(open_store, Secrets.from_env().redact)
    try:
        if not serve:
            sys.stdout.buffer.write(exposition(view))
            return
        view.refresh()  # a store that cannot be opened fails now, not at the first scrape
    except StateUnavailable as exc:
        click.echo(f"llm-exec metrics: state store unavailable: {exc}", err=True)
        sys.exit(2)
    try:
        server = make_server(view, host, port, lambda message: click.echo(f"llm-exec metrics: {message}", err=True))
    except OSError as exc:
        click.echo(f"llm-exec metrics: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        sys.exit(2)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    worker = threading.Thread(target=server.serve_forever, name="llm-exec-metrics", daemon=True)
    worker.start()
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"llm-exec metrics: serving http://{shown}:{server.server_port}/metrics from {view.location} "
               f"({view.rows} ledger rows)", err=True)
    stop.wait()
    server.shutdown()
    server.server_close()
