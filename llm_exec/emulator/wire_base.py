"""Shared data types and helpers for the provider wire formats.

Each provider module subclasses :class:`Wire` and only describes what differs:
how to read the request, how to shape a reply, how errors look. Transport
(chunking, delays, faults) lives in ``server``/``faults`` so it is written once.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, ClassVar

from .tokens import count_tokens, default_reply, shape_reply, split_words

JSON_CT = "application/json"
# A scripted step as posted to /_emulator/script.
Step = dict[str, Any]
SSE_CT = "text/event-stream; charset=utf-8"
NDJSON_CT = "application/x-ndjson"


@dataclass
class Incoming:
    """One HTTP request as the wire modules see it (body already parsed)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: Any
    credential: str | None = None


@dataclass
class Call:
    """The provider-independent meaning of a generation request."""

    provider: str
    model: str
    stream: bool
    texts: list[str]
    last_user_text: str
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    # Provider-specific switches (include_usage, sse, route...).
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt_tokens(self) -> int:
        return sum(count_tokens(t) for t in self.texts)


@dataclass
class Reply:
    text: str
    finish: str  # "stop" | "length"
    stop_sequence: str | None
    prompt_tokens: int

    @property
    def completion_tokens(self) -> int:
        return count_tokens(self.text)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def words(self) -> list[str]:
        return split_words(self.text)


@dataclass
class Response:
    """A fully rendered HTTP response; ``stream`` selects chunked transfer."""

    status: int
    headers: dict[str, str]
    chunks: list[bytes]
    stream: bool = False
    reason: str | None = None
    # "json" | "sse" | "ndjson" | "text": lets the trickle fault pick harmless filler.
    kind: str = "json"

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + uuid.uuid4().hex[:length]


def now() -> int:
    return int(time.time())


def as_int(value: Any) -> int | None:
    """Token limits arrive as ints (or floats/strings from loose clients)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def texts_of(content: Any) -> list[str]:
    """Every text in an OpenAI/Anthropic/Gemini content value (str, parts, blocks)."""
    if isinstance(content, str):
        return [content]
    out: list[str] = []
    if isinstance(content, list):
        for item in content:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, dict):
                if isinstance(item.get("text"), str):
                    out.append(item["text"])
                elif "content" in item:  # Anthropic tool_result blocks nest content
                    out.extend(texts_of(item["content"]))
    elif isinstance(content, dict):  # Gemini systemInstruction / a single content
        if "parts" in content:
            out.extend(texts_of(content["parts"]))
        elif isinstance(content.get("text"), str):
            out.append(content["text"])
    return out


def conversation(items: Any, content_key: str = "content", default_role: str | None = None) -> tuple[list[str], str]:
    """(all texts, last user turn's text) of a message/content list."""
    texts: list[str] = []
    last_user = ""
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        parts = texts_of(item.get(content_key))
        texts.extend(parts)
        if item.get("role", default_role) == "user":
            last_user = "\n".join(parts)  # multi-part turns: one part per line
    return texts, last_user


# A scripted over-long prompt (``{"error_body": "context_length"}``) is reported as this many
# tokens over a window of this size, whatever the prompt really was.
EMULATED_CONTEXT_WINDOW = 4096


def overflow_tokens(call: Call | None) -> tuple[int, int]:
    """(prompt tokens, context window) for a scripted context overflow: the prompt's real count
    on top of the whole window, so the numbers read like a real refusal."""
    prompt = call.prompt_tokens if call is not None else 0
    return EMULATED_CONTEXT_WINDOW + max(prompt, 1), EMULATED_CONTEXT_WINDOW


def phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def dumps(obj: Any, indent: int | None = None, separators: tuple[str, str] = (",", ":")) -> bytes:
    return json.dumps(obj, indent=indent, separators=None if indent else separators, ensure_ascii=False).encode()


def json_response(
    status: int,
    obj: Any,
    headers: dict[str, str] | None = None,
    content_type: str = JSON_CT,
    indent: int | None = None,
    trailer: bytes = b"",
) -> Response:
    body = dumps(obj, indent=indent) + trailer
    return Response(status, {"Content-Type": content_type, **(headers or {})}, [body])


def sse_event(
    data: Any, event: str | None = None, sep: bytes = b"\n\n", separators: tuple[str, str] = (",", ":")
) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    payload = data if isinstance(data, bytes) else dumps(data, separators=separators)
    return head + b"data: " + payload + sep


def stream_response(
    status: int, chunks: list[bytes], content_type: str, headers: dict[str, str], kind: str
) -> Response:
    return Response(status, {"Content-Type": content_type, **headers}, chunks, stream=True, kind=kind)


class Wire:
    """Base class: one instance per provider, stateless and thread-safe."""

    provider: ClassVar[str] = ""
    needs_auth: ClassVar[bool] = True
    # Status used when a mid-stream error is scripted for a non-streaming request.
    overload_status: ClassVar[int] = 500

    # -- request side -------------------------------------------------
    def parse(self, req: Incoming) -> Call:
        raise NotImplementedError

    def is_stream(self, req: Incoming) -> bool:
        """Cheap stream detection for replay matching (no full parse needed)."""
        return isinstance(req.body, dict) and bool(req.body.get("stream"))

    def reply_for(self, call: Call, override: str | None = None, empty: bool = False) -> Reply:
        if empty:
            base = ""
        elif override is not None:
            base = override
        else:
            base = default_reply(self.provider, call.last_user_text)
        text, finish, matched = shape_reply(base, call.max_tokens, call.stop)
        return Reply(text, finish, matched, call.prompt_tokens)

    # -- response side ------------------------------------------------
    def headers(self) -> dict[str, str]:
        """Provider-specific success/error headers (request ids etc.)."""
        return {}

    def render(self, call: Call, reply: Reply, variant: str | None = None) -> Response:
        """variant: None, "stream_error" or "usage_not_last"."""
        raise NotImplementedError

    def error(self, call: Call | None, status: int, message: str | None = None, step: Step | None = None) -> Response:
        raise NotImplementedError

    def auth_error(self, call: Call | None) -> Response:
        return self.error(call, 401)

    def context_error(self, call: Call | None, status: int | None = None) -> Response:
        """The provider's own answer to a prompt over the model's context window (see
        ``overflow_tokens``); ``status`` overrides the provider's (400 unless it says otherwise)."""
        raise NotImplementedError

    def key_error(self, call: Call | None, key: str, status: int) -> Response:
        """An error that echoes the credential (tests our redaction)."""
        return self.error(call, status, f"unauthorized: invalid key {key}")
