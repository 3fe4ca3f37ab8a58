"""Blocking `requests` calls made cancellable for the asyncio core (custom and llama providers).

The core runs every attempt under `asyncio.timeout`, so a call must give up as soon as its task is
cancelled. `requests` blocks, so each exchange runs in its own DAEMON thread: not
`asyncio.to_thread`, whose executor threads are joined at interpreter exit and would hold the
process open after a deadline until the server answered. Results come back to the loop with
`loop.call_soon_threadsafe`.

On cancellation the loop side shuts the exchange's sockets down: `close()` from another thread
does not wake a thread blocked in `recv()` on Linux, `shutdown()` does. The sockets are found by
giving each session connection classes that register their socket with the exchange running on
the current thread. The worker then fails at once and closes its own response and session.

`requests` is imported inside functions only: `--help` and `--dry-run` must not pay for it.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, ConnectionError, LlmError, ResponseError, TimeoutError
from ._http_errors import body_message, error_from_status, parse_body
from .base import mapped_errors

if TYPE_CHECKING:
    import requests

_READ_SIZE = 65536
_REQUEST_ID_HEADERS = ("x-request-id", "request-id")


@dataclass(frozen=True)
class HttpReply:
    """A complete HTTP answer. Header names are lower-cased."""

    status: int
    headers: Mapping[str, str]
    text: str
    reason: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def request_id(self) -> str | None:
        for name in _REQUEST_ID_HEADERS:
            if self.headers.get(name):
                return self.headers[name]
        return None

    def error(self) -> LlmError:
        """The error for a non-2xx answer, through the shared status table."""
        body = parse_body(self.text)
        message = body_message(body, self.reason or f"HTTP {self.status}")
        return error_from_status(self.status, message, headers=self.headers, request_id=self.request_id, body=body)

    def json(self) -> Any:
        """The body of a 2xx answer as JSON; anything else is a ResponseError."""
        return parse_json(self.text)


def parse_json(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        snippet = text[:200].decode("utf-8", "replace") if isinstance(text, bytes) else text[:200]
        raise ResponseError(f"response body is not valid JSON: {snippet!r}") from exc


async def post_json(url: str, body: Any, headers: Mapping[str, str], timeout: float) -> HttpReply:
    """POST `body` as JSON and return the whole answer, whatever its status."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[HttpReply] = loop.create_future()
    exchange = _Exchange(loop)

    def settle(reply: HttpReply | None, error: BaseException | None) -> None:
        if done.done():  # cancelled meanwhile
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(reply)  # type: ignore[arg-type]

    def run() -> None:
        try:
            with _session() as session:
                response = session.post(url, data=_encode(body), headers=_headers(headers), timeout=timeout)
                reply = _reply(response)
        except BaseException as exc:  # every failure is the awaiting task's to report
            exchange.send(settle, None, exc)
        else:
            exchange.send(settle, reply, None)

    exchange.start(run)
    try:
        with mapped_errors(translate_transport_error):
            return await done
    finally:
        exchange.abort()


async def post_lines(url: str, body: Any, headers: Mapping[str, str], timeout: float) -> AsyncIterator[bytes]:
    """POST `body` as JSON and yield each non-empty line of the answer as soon as it arrives.

    A non-2xx answer is read whole and raised as the mapped error instead. Use it under
    `contextlib.aclosing` so that leaving the loop early ends the exchange at once.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    exchange = _Exchange(loop)

    def run() -> None:
        try:
            with _session() as session, session.post(
                url, data=_encode(body), headers=_headers(headers), timeout=timeout, stream=True
            ) as response:
                if not 200 <= response.status_code < 300:
                    exchange.send(queue.put_nowait, ("reply", _reply(response)))
                    return
                for line in _raw_lines(response.raw):
                    exchange.send(queue.put_nowait, ("line", line))
        except BaseException as exc:  # every failure is the consuming task's to report
            exchange.send(queue.put_nowait, ("error", exc))
        else:
            exchange.send(queue.put_nowait, ("end", None))

    exchange.start(run)
    try:
        while True:
            kind, value = await queue.get()
            if kind == "line":
                yield value
            elif kind == "reply":
                raise value.error()
            elif kind == "error":
                with mapped_errors(translate_transport_error):
                    raise value
            else:
                return
    finally:
        exchange.abort()


def translate_transport_error(exc: BaseException) -> LlmError | None:
    """`requests` / `urllib3` / socket exceptions -> ours; None for anything else (a bug)."""
    import requests
    from urllib3 import exceptions as urllib3_errors

    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(
        exc,
        requests.exceptions.InvalidURL
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema
        | urllib3_errors.LocationParseError,
    ):
        return ConfigurationError(
            f"invalid endpoint URL: {detail}", field="api_endpoint", error_type="invalid_endpoint"
        )
    # ConnectTimeout is both a Timeout and a ConnectionError: the timeout is what happened.
    if isinstance(exc, requests.exceptions.ConnectTimeout | urllib3_errors.ConnectTimeoutError):
        return TimeoutError(f"connection timed out: {detail}", error_type="connect_timeout")
    if isinstance(exc, requests.Timeout | urllib3_errors.ReadTimeoutError | builtins.TimeoutError):
        return TimeoutError("request timed out", error_type="read_timeout")
    if isinstance(exc, requests.exceptions.ContentDecodingError | urllib3_errors.DecodeError):
        return ResponseError(f"response body could not be decoded: {detail}")
    # Refused, reset, DNS, TLS, and a body cut short (ChunkedEncodingError / ProtocolError):
    # all transient from our side, so retryable.
    if isinstance(
        exc,
        requests.ConnectionError
        | requests.exceptions.ChunkedEncodingError
        | urllib3_errors.ProtocolError
        | urllib3_errors.SSLError
        | builtins.ConnectionError,
    ):
        return ConnectionError(f"connection failed: {detail}")
    if isinstance(exc, OSError):  # any other socket failure while reading the raw body
        return ConnectionError(f"connection failed: {detail}")
    return None


# -- the worker thread -------------------------------------------------------------------------

_current = threading.local()


class _Exchange:
    """One HTTP exchange on its own daemon thread, abortable from the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._aborted = False

    def start(self, target: Callable[[], None]) -> None:
        def run() -> None:
            _current.exchange = self  # read by _TrackedConnection.connect on this thread
            target()

        threading.Thread(target=run, name="llm-exec-http", daemon=True).start()

    def send(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run `callback(*args)` on the loop (from the worker thread)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            self._loop.call_soon_threadsafe(callback, *args)

    def register(self, sock: socket.socket) -> None:
        with self._lock:
            if not self._aborted:
                self._sockets.append(sock)
                return
        _shutdown(sock)  # aborted while connecting

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    # The plain-socket shutdown, also for TLS sockets: SSLSocket.shutdown would tear down the TLS
    # object under the reading thread's feet. A closed socket (fd -1) raises and is left alone.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _register_socket(sock: socket.socket | None) -> None:
    exchange = getattr(_current, "exchange", None)
    if exchange is not None and sock is not None:
        exchange.register(sock)


_adapter_class: type | None = None


def _session() -> requests.Session:
    """A fresh session per exchange whose connections register their sockets for abort()."""
    import requests

    session = requests.Session()
    adapter = _tracking_adapter_class()()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _tracking_adapter_class() -> type:
    global _adapter_class
    if _adapter_class is None:
        from requests.adapters import HTTPAdapter
        from urllib3.connection import HTTPConnection, HTTPSConnection
        from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

        class TrackedHttpConnection(HTTPConnection):
            def connect(self) -> None:
                super().connect()
                _register_socket(self.sock)

        class TrackedHttpsConnection(HTTPSConnection):
            def connect(self) -> None:
                super().connect()
                _register_socket(self.sock)

        class TrackedHttpPool(HTTPConnectionPool):
            ConnectionCls = TrackedHttpConnection

        class TrackedHttpsPool(HTTPSConnectionPool):
            ConnectionCls = TrackedHttpsConnection

        pools = {"http": TrackedHttpPool, "https": TrackedHttpsPool}

        class TrackingAdapter(HTTPAdapter):
            # HTTPAdapter's default max_retries=0 is kept: the core owns retries.
            def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
                super().init_poolmanager(*args, **kwargs)
                self.poolmanager.pool_classes_by_scheme = pools

            def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
                manager = super().proxy_manager_for(proxy, **proxy_kwargs)
                if proxy.lower().startswith(("http://", "https://")):  # SOCKS managers differ
                    manager.pool_classes_by_scheme = pools
                return manager

        _adapter_class = TrackingAdapter
    return _adapter_class


# -- helpers run on the worker thread -----------------------------------------------------------


def _encode(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def _headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {"Content-Type": "application/json", "Accept": "application/json", **headers}


def _reply(response: requests.Response) -> HttpReply:
    text = response.content.decode(response.encoding or "utf-8", "replace")
    return HttpReply(
        status=response.status_code,
        headers={k.lower(): v for k, v in response.headers.items()},
        text=text,
        reason=response.reason or "",
    )


def _raw_lines(raw: Any) -> Iterator[bytes]:
    """Non-empty lines of a streamed body, each yielded as soon as its newline arrives.

    `read1` returns whatever bytes have arrived, with or without chunked framing; `read(n)` (and so
    requests' `iter_lines`) waits for n bytes when the body is not chunked. urllib3 < 2.3 has no
    read1: fall back to byte-wise reads, slower but just as prompt.
    """
    read1 = getattr(raw, "read1", None)
    buffer = bytearray()
    while True:
        data = read1(_READ_SIZE, decode_content=True) if read1 is not None else raw.read(1, decode_content=True)
        if not data:
            break
        buffer += data
        if b"\n" not in data:
            continue
        *lines, rest = bytes(buffer).split(b"\n")
        buffer = bytearray(rest)
        for line in lines:
            if line.strip():
                yield line.rstrip(b"\r")
    if bytes(buffer).strip():
        yield bytes(buffer).rstrip(b"\r")
