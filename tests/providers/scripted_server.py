"""A tiny scripted HTTP server and helpers shared by the provider tests (no mocking of our code).

The server logs every POST (path, lower-cased headers, JSON body) and answers it with the next
scripted action; the pytest fixtures `server` and `clean_env` live in this folder's conftest.py.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from llm_exec.providers.base import BaseLlm
from llm_exec.request import LlmRequest, Message
from llm_exec.response import LlmResponse
from tests.conftest import shared_fixtures


def fixture(name: str) -> dict[str, Any]:
    """A recorded exchange, by its path under ../shared/fixtures (e.g. "ollama/chat-nonstream-llama3.json")."""
    path = shared_fixtures() / name
    if not path.is_file():
        pytest.fail(f"recorded fixture {path} is missing: the tests replay real traffic from /work/shared/fixtures")
    return json.loads(path.read_text())


# -- the server ------------------------------------------------------------------------------------

Action = Callable[["Handler"], None]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server  # type: ignore[assignment]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.log.append(
            {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": json.loads(raw)}
        )
        action = self.server.actions.pop(0) if self.server.actions else reply(500, {"error": "no scripted step"})
        action(self)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.log: list[dict[str, Any]] = []
        self.actions: list[Action] = []
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


# -- scripted actions ------------------------------------------------------------------------------


def reply(
    status: int,
    body: Any,
    *,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> Action:
    """Answer with a complete body: a str is sent as is, anything else as JSON."""
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()

    def act(handler: Handler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    return act


def chunked(pieces: list[bytes], *, content_type: str = "application/x-ndjson", wait_after: int | None = None,
            end: str = "clean", framing: str = "chunked") -> Action:
    """Send each piece as one HTTP chunk, as Ollama does per NDJSON line.

    wait_after: hold (until the test releases the server) after that many pieces.
    end: "clean" (terminating chunk), "reset" (hang up mid-body), "stall" (never finish).
    framing: "chunked", or "close" (no length: the body ends when the server hangs up).
    """

    def act(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        if framing == "chunked":
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.send_header("Connection", "close")
        handler.end_headers()
        for index, piece in enumerate(pieces):
            if wait_after is not None and index == wait_after:
                handler.server.release.wait(30)
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if framing == "chunked" else piece)
            handler.wfile.flush()
        if end == "clean":
            if framing == "chunked":
                handler.wfile.write(b"0\r\n\r\n")
        elif end == "reset":
            handler.wfile.write(b"40\r\n{\"partial")  # a chunk cut short
            handler.connection.shutdown(socket.SHUT_RDWR)
        else:
            handler.server.release.wait(30)
        handler.close_connection = True

    return act


def ndjson_pieces(body: str) -> list[bytes]:
    return [line.encode() + b"\n" for line in body.splitlines() if line.strip()]


def stall(handler: Handler) -> None:
    """Never answer (until the test releases the server)."""
    handler.server.release.wait(30)
    handler.close_connection = True


# -- calling a provider ----------------------------------------------------------------------------


def request_maker(default_text: str, *, model: str, max_tokens: int) -> Callable[..., LlmRequest]:
    """A `request(text=default_text, **kwargs)` for one user message, with a module's default model
    and max_tokens (either can be overridden by a keyword)."""

    def request(text: str = default_text, **kwargs: Any) -> LlmRequest:
        kwargs.setdefault("model", model)
        kwargs.setdefault("max_tokens", max_tokens)
        return LlmRequest(messages=(Message("user", text),), **kwargs)

    return request


def generate(provider: BaseLlm, req: LlmRequest) -> LlmResponse:
    return asyncio.run(provider.generate(req))


def stream(provider: BaseLlm, req: LlmRequest) -> tuple[list[str], LlmResponse]:
    """The text deltas and the final response of a streamed call."""

    async def collect() -> list[Any]:
        return [item async for item in provider.stream(req)]

    items = asyncio.run(collect())
    assert isinstance(items[-1], LlmResponse)
    assert all(isinstance(item, str) for item in items[:-1])
    return items[:-1], items[-1]


def closed_port() -> int:
    """A loopback port that nothing listens on (bound, then closed again)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def no_worker_threads_left(within: float = 2.0) -> bool:
    """Whether every `llm-exec-http` worker thread has ended within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(t.name == "llm-exec-http" for t in threading.enumerate()):
            return True
        time.sleep(0.02)
    return False
