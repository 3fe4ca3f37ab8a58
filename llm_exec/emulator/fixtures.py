"""Serving recorded responses: scripted ``fixture`` steps and ``--replay DIR``.

Fixture files use the format of ``/work/shared/fixtures`` (see its INDEX.md):
``{"request": {"method", "path", "headers", "body"}, "response": {"status",
"status_message", "headers", "body"}}`` where ``response.body`` is the exact
recorded string.

Replay rule (``Replayer.match``): all ``*.json`` files under DIR (recursively)
are considered in sorted order of their path relative to DIR. A recording
matches an incoming request when

1. its ``request.path`` without the query string equals the incoming path, and
2. its stream flag equals the incoming one: the JSON body's ``stream`` (for
   Ollama ``/api/*`` an absent ``stream`` means true), or for Gemini
   ``:streamGenerateContent`` in the path; for Gemini streams, whether the
   query has ``alt=sse`` must match as well (SSE vs JSON-array framing).

Among matches the first with status 200 wins, else the first match of any
status. For Gemini, only if nothing matched exactly, the same search is
repeated ignoring the model name in ``models/{model}:`` and the API version
(``v1``/``v1beta``/``v1alpha``: google-genai 3.x calls ``/v1`` while the
recordings were made on ``/v1beta``). No match → the provider's 404 error
shape with a message naming the path and stream flag.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from .routes import resolve, without_model
from .wire_base import Incoming, Response

_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "content-encoding", "keep-alive"}
# Split after each SSE event separator so chunk boundaries fall between events.
_SSE_SPLIT = re.compile(rb"(?<=\r\n\r\n)|(?<=\n\n)")
_CHUNKS = 4


class FixtureError(ValueError):
    pass


def resolve_fixture(fixtures_dir: Path, name: str) -> Path:
    """A fixture path inside fixtures_dir (refuses to escape it)."""
    base = fixtures_dir.resolve()
    path = (base / name).resolve()
    if base != path and base not in path.parents:
        raise FixtureError(f"fixture {name!r} is outside the fixtures dir")
    if not path.is_file():
        raise FixtureError(f"fixture {name!r} not found in {base}")
    return path


def load_fixture(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("response"), dict):
        raise FixtureError(f"{path} is not a recorded request/response pair")
    return data


def _infer_content_type(body: str) -> str:
    """Some cassettes kept no headers; guess so SDKs still pick the right parser."""
    head = body.lstrip()
    if head.startswith(("data:", "event:")):
        return "text/event-stream"
    try:
        json.loads(body)
        return "application/json"
    except ValueError:
        pass
    lines = [ln for ln in body.splitlines() if ln.strip()]
    if len(lines) > 1 and all(ln.lstrip().startswith("{") for ln in lines):
        return "application/x-ndjson"
    return "text/plain"


def _group(parts: list[bytes]) -> list[bytes]:
    """Merge events into at most a few chunks ("sent as recorded, in a few chunks")."""
    parts = [p for p in parts if p]
    size = max(1, -(-len(parts) // _CHUNKS))
    return [b"".join(parts[i:i + size]) for i in range(0, len(parts), size)]


def fixture_response(data: dict[str, Any]) -> Response:
    rec = data["response"]
    raw = rec.get("body")
    text = raw if isinstance(raw, str) else json.dumps(raw)
    headers = {k: str(v) for k, v in (rec.get("headers") or {}).items() if k.lower() not in _HOP_BY_HOP}
    ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    if ctype is None:
        ctype = headers["Content-Type"] = _infer_content_type(text)
    body = text.encode("utf-8")
    status, reason = int(rec["status"]), rec.get("status_message")
    if "event-stream" in ctype:
        return Response(status, headers, _group(_SSE_SPLIT.split(body)), True, reason, "sse")
    if "ndjson" in ctype:
        return Response(status, headers, _group(body.splitlines(keepends=True)), True, reason, "ndjson")
    return Response(status, headers, [body], False, reason, "json")


def _stream_key(req: Incoming) -> tuple[bool, bool] | None:
    wire = resolve(req.path)
    if wire is None:
        return None
    return wire.is_stream(req), req.query.get("alt") == "sse"


class Replayer:
    """Answers every provider request from a directory of recordings."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.entries: list[tuple[str, tuple[bool, bool], dict[str, Any]]] = []
        for path in sorted(directory.rglob("*.json"), key=lambda p: p.relative_to(directory).as_posix()):
            try:
                data = load_fixture(path)
            except (ValueError, OSError):
                continue  # not a recording (e.g. an index file); skip quietly
            request = data.get("request") or {}
            rpath, _, query = str(request.get("path", "")).partition("?")
            body = request.get("body")
            body = body if isinstance(body, dict) else {}
            key = _stream_key(Incoming("POST", rpath, dict(parse_qsl(query)), {}, body))
            if key is not None:
                self.entries.append((rpath, key, data))

    def match(self, req: Incoming) -> dict[str, Any] | None:
        key = _stream_key(req)
        for normalize in (lambda p: p, without_model):
            target = normalize(req.path)
            found = [d for p, k, d in self.entries if k == key and normalize(p) == target]
            if found:
                return next((d for d in found if int(d["response"].get("status", 0)) == 200), found[0])
        return None
