"""BaseLlm: the one interface every provider implements.

A provider only translates: LlmRequest -> SDK call -> LlmResponse, and SDK exceptions -> our
errors (llm_exec.errors). Retries, deadlines, pricing and output belong to the core; a provider
never retries (its SDK's retries are turned off) and never prints.

Capabilities and configuration are class attributes, so the core asks flags, never names.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, ClassVar

from ..config import check_endpoint, env_first, environ
from ..errors import AuthenticationError, ConfigurationError, ConnectionError, LlmError, ResponseError
from ..request import LlmRequest, Message
from ..response import LlmResponse

StreamItem = str | LlmResponse


@contextmanager
def mapped_errors(translate: Callable[[BaseException], LlmError | None]) -> Iterator[None]:
    """The one boundary where a provider's SDK exceptions become ours (chained with `from`).

    `translate` returns None for exceptions it does not know: those are bugs and propagate
    unchanged, to be reported as internal errors by the runner.
    """
    try:
        yield
    except LlmError:
        raise
    except Exception as exc:
        mapped = translate(exc)
        if mapped is None:
            raise
        raise mapped from exc


def incomplete_stream(events: int, terminal: str) -> LlmError:
    """A stream that ended without its terminal event must never pass for a complete answer.

    No events at all means the body was not a stream (a proxy page, a JSON error, garbage): an
    invalid response. Some events but no terminal one means the stream was cut: retryable (the
    core still refuses to retry once deltas were written).
    """
    if events == 0:
        return ResponseError(f"the response carried no stream events (expected {terminal})")
    return ConnectionError(f"the stream ended before {terminal}", error_type="truncated_stream")


class BaseLlm(ABC):
    #: Provider id reported in results ("anthropic", "openai", ...).
    name: ClassVar[str]
    #: Model used when the task names none.
    default_model: ClassVar[str]
    #: Environment variables holding the key, in order of preference.
    key_env_vars: ClassVar[tuple[str, ...]] = ()
    #: Whether a call without any key is a configuration error.
    requires_key: ClassVar[bool] = True
    #: Environment variables holding a base-URL override, in order of preference.
    base_url_env_vars: ClassVar[tuple[str, ...]] = ()
    default_base_url: ClassVar[str | None] = None
    #: Whether `stream()` yields deltas as they arrive (custom does not).
    can_stream: ClassVar[bool] = True
    #: genai-prices provider id; None = a local model with no price.
    pricing_provider: ClassVar[str | None] = None

    # -- what the rest of llm_exec reads instead of naming providers (providers/registry.py) --------
    #: Registry `type:` values served by this provider, besides its registered name itself.
    agent_types: ClassVar[tuple[str, ...]] = ()
    #: Other names `get_provider` accepts for it (e.g. the vendor's name for the executor's).
    provider_aliases: ClassVar[tuple[str, ...]] = ()
    #: Task-spec fields this provider reads as its own options (passed in LlmRequest.options and to
    #: for_options); other providers' option fields are not.
    option_fields: ClassVar[tuple[str, ...]] = ()
    #: Its dedicated console script, when it has one; plugins run as `llm-exec run --provider NAME`.
    executable: ClassVar[str | None] = None
    #: Where the bundled emulator serves its wire format, relative to the emulator's root URL: the
    #: value for its first base-URL variable (help texts, the demo, tests).
    emulator_path: ClassVar[str] = ""
    #: OpenTelemetry GenAI semantic conventions: `gen_ai.provider.name` and `gen_ai.operation.name`.
    gen_ai_provider: ClassVar[str | None] = None  # None: the provider's `name`
    gen_ai_operation: ClassVar[str] = "chat"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 600.0,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.api_key = api_key
        self.base_url = base_url or self.default_base_url
        self.timeout = timeout
        self.options = dict(options or {})

    # -- construction from the environment -------------------------------------------------

    @classmethod
    def from_env(
        cls,
        *,
        api_key_env: str | None = None,
        api_endpoint: str | None = None,
        timeout: float = 600.0,
        options: Mapping[str, Any] | None = None,
        key_optional: bool = False,
    ) -> BaseLlm:
        """Resolve key and base URL: the spec's fields win over the SDK's own env vars. The class
        that serves the options (for_options) is the one built, so llama's API style is honoured
        however the provider was obtained. `key_optional` (a dry run, which sends nothing): a
        missing key leaves api_key None instead of raising."""
        target = cls.for_options(options or {})
        try:
            api_key = target.resolve_key(api_key_env)
        except AuthenticationError:
            if not key_optional:
                raise
            api_key = None
        return target(
            api_key=api_key,
            base_url=target.resolve_base_url(api_endpoint),
            timeout=timeout,
            options=options,
        )

    @classmethod
    def resolve_key(cls, api_key_env: str | None) -> str | None:
        if api_key_env:
            value = environ().get(api_key_env)
            if not value:
                raise AuthenticationError(
                    f"environment variable {api_key_env} (named by api_key_env) is not set",
                    field="api_key_env",
                    error_type="missing_api_key",
                )
            return value
        _, value = env_first(*cls.key_env_vars)
        if value is None and cls.requires_key:
            names = " or ".join(cls.key_env_vars)
            raise AuthenticationError(
                f"no API key: set {names}, or name another variable in the spec's api_key_env",
                field="api_key_env",
                error_type="missing_api_key",
            )
        return value

    @classmethod
    def resolve_base_url(cls, api_endpoint: str | None) -> str | None:
        if api_endpoint:
            return check_endpoint(api_endpoint, source="api_endpoint")
        name, value = env_first(*cls.base_url_env_vars)
        if value is not None and name is not None:
            return check_endpoint(value, source=name)
        return cls.default_base_url

    @classmethod
    def for_options(cls, options: Mapping[str, Any]) -> type[BaseLlm]:
        """The class that serves these spec options (llama picks its API style here)."""
        return cls

    @classmethod
    def model_deprecations(cls) -> Mapping[str, tuple[str | None, str | None]]:
        """Models the provider itself declares deprecated: model -> (end-of-life ISO date, replacement
        model), None where not known. Read by llm_exec.models.deprecation on every call, so it must be
        cheap (no SDK import)."""
        return {}

    # -- the calls ---------------------------------------------------------------------------

    async def generate(self, request: LlmRequest) -> LlmResponse:
        started = time.monotonic()
        response = await self._generate(request)
        return replace(response, latency_seconds=time.monotonic() - started)

    async def stream(self, request: LlmRequest) -> AsyncIterator[StreamItem]:
        """Yield text deltas (str) as they arrive, then one final LlmResponse.

        Providers that cannot stream yield only the final LlmResponse.
        """
        started = time.monotonic()
        if not self.can_stream:
            yield await self.generate(request)
            return
        async for item in self._stream(request):
            if isinstance(item, LlmResponse):
                yield replace(item, latency_seconds=time.monotonic() - started)
            else:
                yield item

    async def generate_content_async(self, messages: Sequence[Mapping[str, str]] | str,
                                     **kwargs: Any) -> str:
        """The seed's convenience call: messages (or one prompt) in, answer text out."""
        if isinstance(messages, str):
            turns: tuple[Message, ...] = (Message("user", messages),)
        else:
            turns = tuple(Message(m["role"], m["content"]) for m in messages)  # type: ignore[arg-type]
        kwargs.setdefault("model", self.default_model)
        response = await self.generate(LlmRequest(messages=turns, **kwargs))
        return response.content

    @abstractmethod
    async def _generate(self, request: LlmRequest) -> LlmResponse: ...

    def _stream(self, request: LlmRequest) -> AsyncIterator[StreamItem]:
        raise NotImplementedError(f"{self.name} does not stream")

    @abstractmethod
    def describe(self, request: LlmRequest) -> dict[str, Any]:
        """The HTTP request that would be sent: {method, url, headers, body}; key redacted."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook; most providers hold nothing
        """Release network resources (SDK clients)."""

    # -- helpers for subclasses ----------------------------------------------------------------

    def require_base_url(self) -> str:
        if not self.base_url:
            raise ConfigurationError(
                f"no endpoint configured for {self.name}", field="api_endpoint",
                error_type="missing_endpoint",
            )
        return self.base_url.rstrip("/")

    def auth_header_preview(self, header: str = "Authorization", scheme: str = "Bearer ") -> dict:
        return {header: f"{scheme}[REDACTED]"} if self.api_key else {}

    def json_post_preview(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        """describe() for providers that POST JSON themselves (no SDK): bearer key redacted."""
        return {"method": "POST", "url": url,
                "headers": {"Content-Type": "application/json", **self.auth_header_preview()}, "body": body}
