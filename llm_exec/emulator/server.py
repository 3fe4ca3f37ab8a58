"""HTTP plumbing, admin API, scripted steps and the in-process ``Emulator``.

Request flow for a provider route: log it → pop the next scripted step →
wait ``latency_ms`` (+ step ``delay_ms``) → socket faults that need no
response (``reset``, ``stall``) → build a ``Response`` (fixture, scripted
error, fault body, replayed recording or the deterministic reply) → send it
normally or through a transport fault (``truncate``, ``reset_mid_body``,
``trickle``).

Scripted steps win over authentication: a step with ``status``/``fixture``/``error_body``/
``html``/``echo_key``/``malformed`` answers even without a credential; the
normal reply path (including reply-only steps and replay mode) checks auth.
Ollama's GET ``/api/tags`` and ``/api/version`` are logged but never consume
a step, so client health checks don't eat scripted failures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from .error_bodies import error_body_response
from .faults import Transport, html_response
from .fixtures import FixtureError, Replayer, fixture_response, load_fixture, resolve_fixture
from .ollama_wire import meta_response
from .routes import resolve
from .state import (
    CREDENTIAL_HEADERS,
    REDACTED,
    EmulatorHTTPServer,
    EmulatorState,
    Settings,
    find_credential,
    validate_steps,
)
from .wire_base import Call, Incoming, Response, Wire, json_response, phrase

ADMIN = "/_emulator/"


def _parse_body(raw: bytes) -> Any:
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text) if text.strip() else text
    except ValueError:
        return text


def _body_response(status: int, body: Any, headers: dict[str, str]) -> Response:
    """A scripted literal body: dicts/lists as JSON, strings verbatim."""
    if not isinstance(body, str):
        return json_response(status, body, headers)
    try:
        json.loads(body)
        ctype = "application/json"
    except ValueError:
        ctype = "text/plain; charset=utf-8"
    return Response(status, {"Content-Type": ctype, **headers}, [body.encode()], kind="text")


class Handler(Transport):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # never print request lines: paths may carry ?key=

    def setup(self) -> None:
        super().setup()
        # Stream chunks are tiny; without NODELAY Nagle + delayed ACK add ~40 ms stalls.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (OSError, ValueError):
            # Client went away or we hung up on purpose (closed wfile): end this connection.
            self.close_connection = True

    def do_GET(self) -> None:
        self.dispatch()

    do_POST = do_PUT = do_DELETE = do_GET

    # -- plumbing -------------------------------------------------------
    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def dispatch(self) -> None:
        path, _, query_string = self.path.partition("?")
        raw = self._read_body()
        arrived = time.time()
        if path.startswith(ADMIN):
            return self.send(self.admin(path, _parse_body(raw)))
        query = dict(parse_qsl(query_string, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        credential, scheme = find_credential(headers, query)
        req = Incoming(self.command, path, query, headers, _parse_body(raw), credential)
        meta = meta_response(path) if self.command == "GET" else None
        wire = resolve(path) if self.command == "POST" else None
        if meta is None and wire is None:
            return self.send(json_response(404, {"error": f"emulator: no route for {self.command} {path}"}))
        self.server.state.record({
            "method": self.command,
            "path": path,
            "query": {k: REDACTED if k == "key" else v for k, v in query.items()},
            "headers": {k: REDACTED if k.lower() in CREDENTIAL_HEADERS else v for k, v in self.headers.items()},
            "auth_scheme": scheme,
            "body": req.body,
            "time": arrived,
            "provider": wire.provider if wire else "ollama",
        })
        if meta is not None:
            return self.send(meta)
        assert wire is not None
        self.serve_provider(wire, req, self.server.state.pop_step())

    def admin(self, path: str, body: Any) -> Response:
        state = self.server.state
        if path == ADMIN + "health":
            return json_response(200, {"ok": True})
        if path == ADMIN + "requests":
            return json_response(200, state.requests())
        if path == ADMIN + "reset" and self.command == "POST":
            state.reset()
            return json_response(200, {"ok": True})
        if path == ADMIN + "script" and self.command == "POST":
            try:
                steps = check_steps(body.get("steps") if isinstance(body, dict) else None, self.server.settings)
            except ValueError as exc:
                return json_response(400, {"ok": False, "error": str(exc)})
            return json_response(200, {"ok": True, "queued": state.add_steps(steps)})
        return json_response(404, {"ok": False, "error": f"unknown admin route {self.command} {path}"})

    # -- provider requests ---------------------------------------------
    def serve_provider(self, wire: Wire, req: Incoming, step: dict[str, Any]) -> None:
        fault = step.get("fault")
        if not self.pause(self.server.settings.latency_ms + float(step.get("delay_ms", 0))):
            return self.hang_up()
        if fault == "reset":
            return self.hang_up(rst=True)
        if fault == "stall" and not self.pause(float(step.get("seconds", 3600)) * 1000):
            return self.hang_up()
        try:
            resp = self.build(wire, req, step)
        except Exception as exc:  # a bug or odd input must not look like a network fault
            resp = json_response(500, {"error": f"emulator internal error: {type(exc).__name__}: {exc}"})
        for name, value in (step.get("headers") or {}).items():
            # Replace case-insensitively so a scripted header never duplicates ours.
            for existing in [k for k in resp.headers if k.lower() == name.lower()]:
                del resp.headers[existing]
            resp.headers[name] = str(value)
        if fault in ("truncate", "reset_mid_body"):
            self.send_partial(resp, rst=fault == "reset_mid_body")
        elif fault == "trickle":
            seconds = step.get("seconds")
            self.trickle(resp, float(step.get("interval_ms", 100)), None if seconds is None else float(seconds))
        else:
            self.send(resp)

    def build(self, wire: Wire, req: Incoming, step: dict[str, Any]) -> Response:
        fault, status = step.get("fault"), step.get("status")
        if status is None and step.get("gemini_api_key_invalid"):
            status = 400
        elif status is None and step.get("retry_delay"):
            status = 429
        call: Call | None = None
        if isinstance(req.body, dict):
            try:
                call = wire.parse(req)
            except (AttributeError, TypeError, ValueError):
                call = None
        if "fixture" in step:
            try:
                path = resolve_fixture(self.server.settings.fixtures_dir, step["fixture"])
                return fixture_response(load_fixture(path))
            except (FixtureError, OSError, ValueError) as exc:
                return json_response(500, {"error": f"emulator: {exc}"})
        if fault == "html":
            return html_response(status or 502, phrase(status or 502))
        if fault == "echo_key":
            return wire.key_error(call, req.credential or "", status or 401)
        if "error_body" in step:
            return error_body_response(wire, call, req.path, step["error_body"], status)
        if status is not None and status >= 400:
            if "body" in step:
                return _body_response(status, step["body"], wire.headers())
            return wire.error(call, status, None, step)
        if wire.needs_auth and not req.credential:
            return wire.auth_error(call)
        if call is None:
            return wire.error(None, 400, "emulator: could not read the request body as this provider's JSON")
        if fault == "malformed":
            # Plausible start of the real JSON, then cut: not parseable.
            full = wire.render(dataclasses.replace(call, stream=False), wire.reply_for(call, step.get("reply")))
            cut = full.body[: len(full.body) // 2]
            return Response(200, {**full.headers, "Content-Type": "application/json"}, [cut])
        if "body" in step:
            return _body_response(status or 200, step["body"], wire.headers())
        replayer = self.server.settings.replayer
        if replayer is not None:
            recorded = replayer.match(req)
            if recorded is None:
                miss = f"emulator replay: no recording matches {req.method} {req.path} (stream={call.stream})"
                return wire.error(call, 404, miss)
            return fixture_response(recorded)
        reply = wire.reply_for(call, step.get("reply"), empty=fault == "empty")
        if fault == "stream_error" and not call.stream:
            return wire.error(call, wire.overload_status)
        resp = wire.render(call, reply, fault if fault in ("stream_error", "usage_not_last") else None)
        if status is not None:
            resp.status = status
        return resp


def check_steps(steps: Any, settings: Settings) -> list[dict[str, Any]]:
    steps = validate_steps(steps)
    for step in steps:
        if "fixture" in step:
            resolve_fixture(settings.fixtures_dir, str(step["fixture"]))  # fail at script time, not mid-test
    return steps


class Emulator:
    """In-process emulator running in a daemon thread (see module docstring)."""

    def __init__(
        self,
        latency_ms: float = 0,
        chunk_delay_ms: float = 0,
        fixtures_dir: str | Path | None = None,
        replay_dir: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.host, self._port = host, port
        if fixtures_dir is None:
            fixtures_dir = (Path.cwd() / "../shared/fixtures").resolve()
        self.settings = Settings(latency_ms=latency_ms, chunk_delay_ms=chunk_delay_ms, fixtures_dir=Path(fixtures_dir))
        self.replay_dir = Path(replay_dir) if replay_dir is not None else None
        # Owned here (not by the server) so script() works before start() and the
        # request log stays readable after stop().
        self.state = EmulatorState()
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Runtime-tunable knobs (read by handlers on every request).
    @property
    def latency_ms(self) -> float:
        return self.settings.latency_ms

    @latency_ms.setter
    def latency_ms(self, value: float) -> None:
        self.settings.latency_ms = value

    @property
    def chunk_delay_ms(self) -> float:
        return self.settings.chunk_delay_ms

    @chunk_delay_ms.setter
    def chunk_delay_ms(self, value: float) -> None:
        self.settings.chunk_delay_ms = value

    def start(self) -> Emulator:
        if self._server is not None:
            return self
        if self.replay_dir is not None:
            if not self.replay_dir.is_dir():
                raise FileNotFoundError(f"replay dir {self.replay_dir} does not exist")
            self.settings.replayer = Replayer(self.replay_dir)
        self._server = EmulatorHTTPServer((self.host, self._port), Handler, self.settings, self.state)
        # A short poll interval keeps stop() fast.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="llm-exec-emulator", daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("emulator not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else "::1" if self.host == "::" else self.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def script(self, steps: list[dict[str, Any]]) -> int:
        """Append steps (same as POST /_emulator/script); returns the queued count.

        Raises ValueError for an unknown field/fault or a missing fixture.
        """
        return self.state.add_steps(check_steps(steps, self.settings))

    def requests(self) -> list[dict[str, Any]]:
        """The request log (same as GET /_emulator/requests)."""
        return self.state.requests()

    def reset(self) -> None:
        """Clear the step queue and the request log."""
        self.state.reset()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()  # wakes stalls, trickles, delays
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=1)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
