"""The metrics of `llm-exec metrics [--serve]`, computed from the usage ledger and the breakers in the
state store: every process that shares the store (a machine's SQLite file, a fleet's Redis) shows
up in one view, and restarting the endpoint loses nothing (the ledger is the record).

The ledger only grows, so the view follows it: each scrape reads the rows appended since the last
one (`StateStore.ledger_after`) and adds them to the totals it keeps; a reset ledger restarts them.
Breakers are read whole on each scrape (one document per provider, model and endpoint).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ._metrics_model import CIRCUIT_OPEN, FAMILIES, Family, Totals, breaker_labels, facts_from_row, observe
from ._metrics_text import go_float

if TYPE_CHECKING:
    from ..state import StateStore

BREAKER_PREFIX = "breaker:"  # CallIdentity.breaker_key


class LedgerView:
    """Totals of every ledger row read so far, plus the breakers as last read."""

    def __init__(self, open_store: Callable[[], StateStore], redact: Callable[[str], str] = str) -> None:
        self.open_store = open_store
        self.redact = redact
        self.totals = Totals()
        self.cursor = 0
        self.rows = 0
        self.location = ""
        self._lock = threading.Lock()  # scrapes may come in parallel

    def refresh(self) -> Totals:
        """Read what is new in the store; returns the totals to expose (raises StateUnavailable)."""
        from .metrics import gen_ai_names

        with self._lock:
            store = self.open_store()
            try:
                self.location = store.location
                rows, cursor, restarted = store.ledger_after(self.cursor)
                if restarted:
                    self.totals, self.rows = Totals(), 0
                for row in rows:
                    observe(self.totals, facts_from_row(row, gen_ai_names, self.redact))
                self.cursor, self.rows = cursor, self.rows + len(rows)
                breakers = store.scan(BREAKER_PREFIX)
            finally:
                store.close()
            exposed = Totals()
            exposed.merge(self.totals)
            for key, doc in breakers.items():
                provider, model = breaker_labels(str(doc.get("label") or ""))
                exposed.set(CIRCUIT_OPEN, (provider, self.redact(model), key), 0 if doc.get("state") == "closed" else 1)
            return exposed


def metric_families(totals: Totals) -> Iterator[Any]:
    """prometheus_client metric families for `totals` (the scrape endpoint's collector)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

    for family in FAMILIES:
        series = list(totals.series(family))
        if not series:
            continue
        if family.kind == "histogram":
            histogram = HistogramMetricFamily(family.name, family.help, labels=family.labels)
            for labels, value in series:
                histogram.add_metric(labels, _cumulative(family, value), value[-1])
            yield histogram
            continue
        kind = CounterMetricFamily if family.kind == "counter" else GaugeMetricFamily
        metric = kind(family.name, family.help, labels=family.labels)
        for labels, value in series:
            metric.add_metric(labels, value)
        yield metric


def _cumulative(family: Family, counts: list[float]) -> list[tuple[str, float]]:
    buckets: list[tuple[str, float]] = []
    running = 0.0
    for bound, count in zip((*family.buckets, float("inf")), counts[:-1], strict=True):
        running += count
        buckets.append((go_float(bound), running))
    return buckets


class LedgerCollector:
    """A prometheus_client collector: every scrape refreshes the view. A store that cannot be read
    fails the scrape (HTTP 500, so Prometheus' `up` is 0) rather than serve stale numbers as new."""

    def __init__(self, view: LedgerView) -> None:
        self.view = view

    def describe(self) -> list[Any]:
        return []  # no store access at registration

    def collect(self) -> Iterator[Any]:
        yield from metric_families(self.view.refresh())


def exposition(view: LedgerView) -> bytes:
    """The metrics once, in the text format (`llm-exec metrics` without --serve)."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(view))
    return generate_latest(registry)


def make_server(view: LedgerView, host: str, port: int, log: Callable[[str], None]) -> Any:
    """A threaded HTTP server answering every path with the metrics (prometheus_client's WSGI app:
    text or OpenMetrics as the scraper asks, gzip); call serve_forever() on it."""
    import socket
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
    from wsgiref.simple_server import make_server as wsgi_server

    from prometheus_client import CollectorRegistry, make_wsgi_app

    from ..state import StateUnavailable

    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(view))
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        try:
            return metrics_app(environ, start_response)
        except StateUnavailable as exc:
            log(f"state store unavailable: {exc}")
            start_response("503 Service Unavailable", [("Content-Type", "text/plain; charset=utf-8")])
            return [f"state store unavailable: {exc}\n".encode()]

    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]

    class Server(ThreadingMixIn, WSGIServer):
        address_family = family
        daemon_threads = True  # a scrape in progress never holds up the exit

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per scrape would drown the log

    return wsgi_server(host, port, app, Server, handler_class=QuietHandler)
