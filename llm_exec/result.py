"""The result object, and the only writer of stdout (NDJSON delta lines and the result line).

Everything written passes through secret redaction. A reader that went away (EPIPE, e.g.
`| head -c 10`) is not an error of ours: output is dropped quietly and the exit code stands.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from typing import IO, Any

from .config import Secrets
from .errors import LlmError
from .response import LlmResponse


def utc_timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_result(
    *,
    provider: str | None,
    task: dict[str, Any] | None,
    model: str | None,
    elapsed: float,
    attempts: int,
    response: LlmResponse | None = None,
    cost: float | None = None,
    error: LlmError | None = None,
    partial_output: str | None = None,
    cached: bool = False,
    state: str | None = None,
    model_alias: str | None = None,
    warnings: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One result object, fields in the documented order. `task` is the raw spec (None when
    stdin could not be parsed)."""
    task = task or {}
    usage = response.usage if response else None
    status = "success" if error is None else error.status
    result: dict[str, Any] = {
        "status": status,
        "output": response.content if response else partial_output,
        "task_id": task.get("task_id"),
        "agent": task.get("agent"),
        "provider": provider,
        "model": model,
        "response_model": response.model if response else None,
        "execution_time_seconds": round(max(0.0, elapsed), 4),
        "tokens_used": usage.total_tokens if usage else None,
        "prompt_tokens": usage.prompt_tokens if usage else None,
        "completion_tokens": usage.completion_tokens if usage else None,
        "cached_tokens": usage.cached_tokens if usage else None,
        "reasoning_tokens": usage.reasoning_tokens if usage else None,
        "cost_usd": cost,
        "finish_reason": response.finish_reason if response else None,
        "attempts": attempts,
        "request_id": (response.request_id if response else None) or (error.request_id if error else None),
        "timestamp": utc_timestamp(),
        "exit_code": 0 if error is None else error.exit_code,
        "metadata": task.get("metadata") if isinstance(task.get("metadata"), dict) else {},
    }
    if response is not None and response.usage_note:
        result["usage_note"] = response.usage_note
    if cached and usage is not None:
        # A replayed answer consumed nothing now; what the original call used is kept apart.
        result["original_usage"] = {name: result[name] for name in (
            "prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens", "tokens_used")}
        for name in ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens", "tokens_used"):
            result[name] = 0
        result["cost_usd"] = 0.0
    result["cached"] = cached
    if state is not None:
        result["state"] = state
    if model_alias is not None:
        result["model_alias"] = model_alias  # what the task said; `model` is what was sent
    if warnings:
        result["warnings"] = warnings
    if error is not None:
        result["error"] = error.to_dict()
    return result


# Characters that some readers treat as line breaks (Python's str.splitlines, older JavaScript):
# escaped, so one JSON object is always one line for every consumer. They can only occur inside
# JSON strings, where the \u escape means the same.
_LINE_BREAKS = {ord(c): f"\\u{ord(c):04x}" for c in "\x85\u2028\u2029"}


class Output:
    """stdout (or --output FILE), line-oriented, redacted, flushed per line for streaming."""

    def __init__(self, path: str | None, secrets: Secrets, *, pretty: bool = False) -> None:
        self.path = path
        self.secrets = secrets
        self.pretty = pretty
        self._stream: IO[bytes] | None = None
        self._broken = False

    def _target(self) -> IO[bytes]:
        if self._stream is None:
            self._stream = open(self.path, "wb") if self.path else sys.stdout.buffer  # noqa: SIM115
        return self._stream

    def write_line(self, obj: Any, *, pretty: bool = False, secrets: Secrets | None = None) -> None:
        # A lone surrogate (legal as a JSON escape in input) becomes the escape "\\udXXX" again
        # via backslashreplace, so the line stays valid UTF-8 and valid JSON.
        text = json.dumps(obj, ensure_ascii=False, indent=2 if pretty else None).translate(_LINE_BREAKS)
        text = (self.secrets if secrets is None else secrets).redact(text)
        self._write((text + "\n").encode("utf-8", "backslashreplace"))

    def delta(self, text: str, secrets: Secrets | None = None) -> None:
        """One stream delta line; `secrets` (default: the output's) are the task's to redact."""
        self.write_line({"type": "delta", "text": text}, secrets=secrets)

    def result(self, result: dict[str, Any], secrets: Secrets | None = None) -> None:
        self.write_line(result, pretty=self.pretty, secrets=secrets)

    def _write(self, data: bytes) -> None:
        if self._broken:
            return
        try:
            stream = self._target()
            stream.write(data)
            stream.flush()
        except BrokenPipeError:
            self._broken = True
            # Point fd 1 at /dev/null so the interpreter's final flush cannot raise again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())

    @property
    def broken(self) -> bool:
        """The reader went away: nothing written from now on is read."""
        return self._broken

    def close(self) -> None:
        if self._stream is not None and self.path:
            self._stream.close()
