"""Shared server state: the scripted-step queue, the request log, settings and
the HTTP server object that owns them (so handler threads reach it via
``self.server``)."""

from __future__ import annotations

import contextlib
import copy
import socket
import sys
import threading
from collections import deque
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .fixtures import Replayer

CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "proxy-authorization", "api-key"})
REDACTED = "<redacted>"

FAULTS = frozenset({
    "reset", "reset_mid_body", "stall", "trickle", "truncate", "malformed", "html",
    "empty", "stream_error", "usage_not_last", "echo_key",
})
STEP_KEYS = frozenset({
    "times", "delay_ms", "reply", "status", "headers", "body", "fault", "fixture",
    "seconds", "interval_ms", "gemini_api_key_invalid", "retry_delay", "error_body",
})
# Named error bodies real servers send (error_bodies.py).
ERROR_BODIES = frozenset({"context_length", "llama_cpp_context_length", "litellm_invalid_model", "litellm_no_db"})


def find_credential(headers: dict[str, str], query: dict[str, str]) -> tuple[str | None, str | None]:
    """(credential, auth_scheme) from the places SDKs put keys; empty values don't count."""
    auth = headers.get("authorization", "").strip()
    if auth:
        scheme, _, token = auth.partition(" ")
        if token.strip():
            return token.strip(), scheme.lower()
    for name in ("x-api-key", "x-goog-api-key"):
        value = headers.get(name, "").strip()
        if value:
            return value, name
    if query.get("key"):
        return query["key"], "query"
    return None, None


def validate_steps(steps: Any) -> list[dict[str, Any]]:
    """Reject typos early: a misspelt fault would otherwise silently pass as a normal reply."""
    if not isinstance(steps, list):
        raise ValueError("'steps' must be a list")
    for step in steps:
        if not isinstance(step, dict):
            raise ValueError(f"step must be an object, got {step!r}")
        unknown = set(step) - STEP_KEYS
        if unknown:
            raise ValueError(f"unknown step field(s): {sorted(unknown)}")
        if "fault" in step and step["fault"] not in FAULTS:
            raise ValueError(f"unknown fault {step['fault']!r}; expected one of {sorted(FAULTS)}")
        if "error_body" in step and step["error_body"] not in ERROR_BODIES:
            raise ValueError(f"unknown error_body {step['error_body']!r}; expected one of {sorted(ERROR_BODIES)}")
        if "status" in step and not isinstance(step["status"], int):
            raise ValueError("'status' must be an integer")
        if not isinstance(step.get("times", 1), int) or step.get("times", 1) < 0:
            raise ValueError("'times' must be a non-negative integer")
        if not isinstance(step.get("headers", {}), dict):
            raise ValueError("'headers' must be an object")
        for key in ("delay_ms", "seconds", "interval_ms"):
            if key in step and (isinstance(step[key], bool) or not isinstance(step[key], int | float)):
                raise ValueError(f"{key!r} must be a number")
        for key in ("reply", "fixture"):
            if key in step and not isinstance(step[key], str):
                raise ValueError(f"{key!r} must be a string")
    return steps


class EmulatorState:
    """Thread-safe FIFO of scripted steps plus the request log."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._steps: deque[list[Any]] = deque()  # [step, remaining_times]
        self._log: list[dict[str, Any]] = []

    def add_steps(self, steps: list[dict[str, Any]]) -> int:
        with self._lock:
            for step in steps:
                times = step.get("times", 1)
                if times > 0:
                    self._steps.append([copy.deepcopy(step), times])
            return sum(n for _, n in self._steps)

    def pop_step(self) -> dict[str, Any]:
        with self._lock:
            if not self._steps:
                return {}
            entry = self._steps[0]
            entry[1] -= 1
            if entry[1] <= 0:
                self._steps.popleft()
            return entry[0]

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._log.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._log)

    def reset(self) -> None:
        with self._lock:
            self._steps.clear()
            self._log.clear()


@dataclass
class Settings:
    latency_ms: float = 0
    chunk_delay_ms: float = 0
    fixtures_dir: Path = Path("../shared/fixtures")
    replayer: Replayer | None = None


class EmulatorHTTPServer(ThreadingHTTPServer):
    """Owns the state and tracks live connections so stop() can cut them."""

    daemon_threads = True
    block_on_close = False  # never wait for stalled handlers on close
    # The listen backlog (socketserver's default is 5): a client opening dozens of connections at
    # once (a batch at concurrency 64) must not see resets, as it would not from a real API.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: Any, settings: Settings, state: EmulatorState) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.settings = settings
        self.state = state
        self.stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, handler)

    def track(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.discard(conn)

    def close_connections(self) -> None:
        """Wake handler threads blocked on keep-alive reads or slow writes."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-stream is routine for a fault injector; stay quiet.
        if not self.stopping.is_set() and not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)
