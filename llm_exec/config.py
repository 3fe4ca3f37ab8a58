"""Environment: the only module that reads os.environ for provider keys and endpoints.

Also owns secret redaction: every value of every key variable the project knows (plus the one a
spec names in `api_key_env`) is scrubbed from anything we print, because an error body or an SDK
message can echo any of them, not only the executor's own.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import ConfigurationError

# Variables whose name says they hold a credential, for any provider, built-in or plugin
# (ANTHROPIC_API_KEY, ANTHROPIC_AUTH_TOKEN, MISTRAL_API_KEY, ...): their values are scrubbed from
# everything we print, because an error body or an SDK message can echo any of them, not only the
# executor's own. A provider's declared key_env_vars and a spec's api_key_env are added by name.
_CREDENTIAL_NAME = re.compile(r"(?:^|_)(?:API_?KEY|KEY|TOKEN|AUTH_TOKEN|SECRET|PASSWORD|PASSWD)$", re.IGNORECASE)


def credential_variables(env: Mapping[str, str] | None = None) -> list[str]:
    """The set environment variables whose name marks them as credentials."""
    env = os.environ if env is None else env
    return [name for name in env if _CREDENTIAL_NAME.search(name)]


REDACTED = "[REDACTED]"
# Values shorter than this are not scrubbed: redacting "a" would mangle every message.
_MIN_SECRET_LENGTH = 6


def environ() -> Mapping[str, str]:
    return os.environ


def process_start_monotonic(pid: int | None = None) -> float:
    """time.monotonic() value at which this process (or process `pid`) started.

    `timeout_seconds` counts from process start (interpreter boot and imports included), as a CI
    user timing the whole step expects. Linux exposes the start in clock ticks since boot, which is
    the clock CLOCK_BOOTTIME counts; elsewhere we fall back to "now" (import time of this module).
    The warm daemon passes its caller's pid: a task it forks counts from the caller's start.
    """
    try:
        with open(f"/proc/{pid or 'self'}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat(5); the first two fields were split off
        start_boot = start_ticks / os.sysconf("SC_CLK_TCK")
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - start_boot
        return time.monotonic() - max(0.0, age)
    except (OSError, ValueError, IndexError, AttributeError):
        return time.monotonic()


@dataclass(frozen=True)
class Secrets:
    """The secret values to scrub from output."""

    values: tuple[str, ...]

    @classmethod
    def from_env(cls, extra_vars: Iterable[str] = (), env: Mapping[str, str] | None = None) -> Secrets:
        env = os.environ if env is None else env
        names = set(credential_variables(env)) | set(extra_vars)
        found = {env[name] for name in names if env.get(name)}
        # Longest first, so a key that contains another is replaced whole.
        return cls(tuple(sorted((v for v in found if len(v) >= _MIN_SECRET_LENGTH), key=len, reverse=True)))

    def redact(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text


ALIASES_ENV = "LLM_EXEC_ALIASES"


def user_aliases_file() -> tuple[str, bool]:
    """(the model-alias file's path, whether LLM_EXEC_ALIASES named it): else
    $XDG_CONFIG_HOME/llm-exec/aliases.yaml, default ~/.config/llm-exec/aliases.yaml."""
    if os.environ.get(ALIASES_ENV):
        return os.environ[ALIASES_ENV], True
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(config, "llm-exec", "aliases.yaml"), False


def env_first(*names: str) -> tuple[str | None, str | None]:
    """(name, value) of the first variable in `names` that is set and non-empty."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return name, value
    return None, None


_SCHEME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def check_endpoint(url: str, *, source: str) -> str:
    """Validate a base URL from config; a malformed one is a configuration error (exit 2)."""
    if not _SCHEME_RE.match(url):
        raise ConfigurationError(
            f"endpoint {url!r} from {source} is not an absolute http(s) URL",
            field=source,
            error_type="invalid_endpoint",
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigurationError(
            f"endpoint {url!r} from {source} is not a valid URL: {exc}",
            field=source,
            error_type="invalid_endpoint",
        ) from None
    if parts.scheme not in ("http", "https"):
        raise ConfigurationError(
            f"endpoint {url!r} from {source}: unsupported scheme {parts.scheme!r} (use http or https)",
            field=source,
            error_type="invalid_endpoint",
        )
    if not parts.hostname:
        raise ConfigurationError(
            f"endpoint {url!r} from {source} has no host",
            field=source,
            error_type="invalid_endpoint",
        )
    return url

