"""Ready-made TLS contexts for forked tasks.

Every SDK client builds a fresh `ssl.SSLContext` and parses a whole CA bundle into it: ~18 ms per
context, the largest cost left in a warm task (anthropic and openai build one through httpx2's
`httpcore2.default_ssl_context`, google-genai two through `ssl.create_default_context`). The
daemon builds them ahead, during the warm-up. A forked task takes its contexts from its own copy
of the stock (fork copies memory), so every context is still used by one client only, built by the
same function with the same arguments from the same files, just earlier. A call the stock has no
match for (other arguments, or an SSL_CERT_FILE/SSL_CERT_DIR that differs from the warm-up's)
builds its context as before.
"""

from __future__ import annotations

import functools
import os
import ssl
from collections import Counter
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

Factory = Callable[..., ssl.SSLContext]
# Read by OpenSSL, httpcore2 and google-genai when they choose the certificates to load.
TRUST_ENV = ("SSL_CERT_FILE", "SSL_CERT_DIR")


class ContextStock:
    def __init__(self) -> None:
        self._stock: dict[Hashable, list[ssl.SSLContext]] = {}
        self._calls: dict[Hashable, tuple[Factory, tuple[Any, ...], dict[str, Any]]] = {}
        self._demand: Counter[Hashable] = Counter()  # per call, the most contexts one task built
        self._counted: Counter[Hashable] | None = None
        # One factory may call another (httpcore2's calls ssl's when SSL_CERT_FILE is set): only the
        # outermost call is counted and served from the stock; the inner ones build as usual.
        self._depth = 0

    def install(self) -> None:
        """Serve the context factories the SDKs call from the stock."""
        self._serve_from_stock(ssl, "create_default_context")
        try:
            import httpcore2
        except ImportError:  # an SDK version without httpx2: nothing to stock there
            return
        self._serve_from_stock(httpcore2, "default_ssl_context")

    @contextmanager
    def counting(self) -> Iterator[None]:
        """Count the contexts one task builds, to know how many each task may need."""
        self._counted = Counter()
        try:
            yield
        finally:
            self._demand |= self._counted  # Counter union: the maximum per key
            self._counted = None

    def fill(self) -> None:
        self._depth += 1  # build with the real factories only
        try:
            for key, count in self._demand.items():
                factory, args, kwargs = self._calls[key]
                self._stock[key] = [factory(*args, **kwargs) for _ in range(count)]
        finally:
            self._depth -= 1

    def _serve_from_stock(self, module: ModuleType, name: str) -> None:
        factory: Factory = getattr(module, name)

        @functools.wraps(factory)
        def from_stock(*args: Any, **kwargs: Any) -> ssl.SSLContext:
            try:
                key = (name, args, tuple(sorted(kwargs.items())), *(os.environ.get(var) for var in TRUST_ENV))
                hash(key)
            except TypeError:  # e.g. cadata given as a bytearray: not ours to reuse
                key = None
            stocked = self._stock.get(key) if key is not None and self._depth == 0 else None
            if stocked:
                return stocked.pop()
            if key is not None and self._depth == 0 and self._counted is not None:
                self._counted[key] += 1
                self._calls.setdefault(key, (factory, args, kwargs))
            self._depth += 1
            try:
                return factory(*args, **kwargs)
            finally:
                self._depth -= 1

        setattr(module, name, from_stock)
