"""Guard: the shared-state policies applied around one provider call, in this order:

    cache lookup (a hit ends here) -> rate limit -> budget reservation -> per attempt: breaker
    check, call, breaker record -> settle budget, correct tokens, ledger row, cache store

Configured from the environment (llm-route sets the same variables for the executors it spawns):

    LLM_EXEC_STATE=off           no breaker, rate limits, budgets or ledger
    LLM_EXEC_STATE_URL           redis://host:port/db (default: SQLite in LLM_EXEC_STATE_DIR)
    LLM_EXEC_BREAKER_THRESHOLD   consecutive retryable failures that open the circuit (5)
    LLM_EXEC_BREAKER_COOLDOWN    seconds before a half-open probe (30)
    LLM_EXEC_RPM, LLM_EXEC_TPM   requests / tokens per minute for this provider, model and key
    LLM_EXEC_BUDGET_DAILY_USD, LLM_EXEC_BUDGET_MONTHLY_USD   caps for this provider ("executor:<provider>")
    LLM_EXEC_BUDGETS             JSON list of caps: [{"scope": "agent:x", "daily_usd": 5, "monthly_usd": 50}]
    LLM_EXEC_LEDGER_TEXT=1       also store prompt and output text in the ledger
    LLM_EXEC_CACHE               off | read-write | replay | record (the spec's `cache` wins)

Every store failure degrades to "unavailable" (one warning on stderr), never to a failed task.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import (
    BudgetExceededError,
    CircuitOpenError,
    ConfigurationError,
    LlmError,
    LocalRateLimitError,
    ReplayMissError,
)
from ..request import LlmRequest
from ..response import LlmResponse, Usage
from . import open_store, state_enabled
from .policies import (
    BreakerConfig,
    BudgetCap,
    breaker_check,
    breaker_record,
    budget_reserve,
    budget_settle,
    rate_acquire,
    rate_correct,
)
from .store import Doc, StateStore, StateUnavailable

CACHE_MODES = ("off", "read-write", "replay", "record")
# A reservation outlives its process by this much at most (a killed executor cannot settle).
RESERVATION_GRACE_SECONDS = 60.0


@dataclass(frozen=True)
class GuardConfig:
    state: bool = True
    cache_mode: str = "off"
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    rpm: float | None = None
    tpm: float | None = None
    budgets: tuple[BudgetCap, ...] = ()
    ledger_text: bool = False

    @classmethod
    def from_env(cls, provider: str, spec_cache: str | None = None) -> GuardConfig:
        env = os.environ
        cache_mode = spec_cache or env.get("LLM_EXEC_CACHE", "off").strip().lower() or "off"
        if cache_mode not in CACHE_MODES:
            raise ConfigurationError(f"LLM_EXEC_CACHE must be one of {', '.join(CACHE_MODES)}", field="LLM_EXEC_CACHE")
        budgets = [
            BudgetCap(f"executor:{provider}", period, _number(f"LLM_EXEC_BUDGET_{period.upper()}_USD"))
            for period in ("daily", "monthly") if env.get(f"LLM_EXEC_BUDGET_{period.upper()}_USD")
        ]
        budgets += _budget_list(env.get("LLM_EXEC_BUDGETS"))
        return cls(
            state=state_enabled(),
            cache_mode=cache_mode,
            breaker=BreakerConfig(
                threshold=int(_number("LLM_EXEC_BREAKER_THRESHOLD", 5)),
                cooldown=_number("LLM_EXEC_BREAKER_COOLDOWN", 30.0),
            ),
            rpm=_number("LLM_EXEC_RPM", None),
            tpm=_number("LLM_EXEC_TPM", None),
            budgets=tuple(budgets),
            ledger_text=env.get("LLM_EXEC_LEDGER_TEXT") == "1",
        )


def _number(name: str, default: Any = None) -> Any:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, not {raw!r}", field=name) from None
    if value < 0:
        raise ConfigurationError(f"{name} must not be negative", field=name)
    return value


def _budget_list(raw: str | None) -> list[BudgetCap]:
    if not raw:
        return []
    try:
        items = json.loads(raw)
        caps = [BudgetCap(str(item["scope"]), period, float(item[f"{period}_usd"]))
                for item in items for period in ("daily", "monthly") if item.get(f"{period}_usd") is not None]
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigurationError(f"LLM_EXEC_BUDGETS is not a JSON list of caps: {exc}",
                                 field="LLM_EXEC_BUDGETS") from None
    return caps


@dataclass(frozen=True)
class CallIdentity:
    """What the shared state is keyed by. The key itself never appears: only a fingerprint."""

    provider: str
    model: str
    endpoint: str
    key_fingerprint: str

    @property
    def breaker_key(self) -> str:
        return "breaker:" + _digest(self.provider, self.model, self.endpoint)

    @property
    def rate_key(self) -> str:
        # Limits belong to an API key (two machines sharing one key share its limits) and model.
        return "rate:" + _digest(self.provider, self.key_fingerprint, self.model)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def key_fingerprint(api_key: str | None) -> str:
    return hashlib.sha256((api_key or "").encode()).hexdigest()[:16]


def cache_key(identity: CallIdentity, request: LlmRequest) -> str:
    """Canonical hash of everything that shapes the answer: provider, endpoint, model, messages and
    every generation parameter (streaming is delivery, not content, so it is left out)."""
    material = {
        "provider": identity.provider, "endpoint": identity.endpoint, "model": request.model,
        "messages": [[m.role, m.content] for m in request.messages], "max_tokens": request.max_tokens,
        "temperature": request.temperature, "top_p": request.top_p, "stop": list(request.stop),
        "seed": request.seed, "options": dict(request.options),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


Warn = Callable[[str], None]


class SharedStore:
    """One store for many guards (a batch): opened on first use, once, and closed by its owner,
    never by the guards. A store that cannot be opened stays unavailable for the whole batch."""

    def __init__(self) -> None:
        self._store: StateStore | None = None
        self._failure: str | None = None

    def get(self) -> StateStore:
        if self._store is None:
            if self._failure is not None:
                raise StateUnavailable(self._failure)
            try:
                self._store = open_store()
            except StateUnavailable as exc:
                self._failure = str(exc)
                raise
        return self._store

    def close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            store.close()


class Guard:
    def __init__(self, config: GuardConfig, identity: CallIdentity, warn: Warn,
                 clock: Callable[[], float] = time.time, shared: SharedStore | None = None) -> None:
        self.config = config
        self.identity = identity
        self.warn = warn
        self.clock = clock
        self.status = "ok" if config.state else "off"
        self._shared = shared
        self._store: StateStore | None = None
        self._opened = False
        self._reservation: str | None = None
        self._reserved_at = 0.0
        self._reserved_tokens = 0
        self._probe = False

    # -- plumbing ---------------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.config.state or self.config.cache_mode != "off"

    def _with_store(self, action: Callable[[StateStore], Any], default: Any = None) -> Any:
        """Run `action` on the store; an unreachable store degrades to `default` with one warning."""
        if self.status == "unavailable" or not self.active:
            return default
        try:
            if not self._opened:
                self._opened = True
                self._store = self._shared.get() if self._shared is not None else open_store()
            if self._store is None:
                return default
            return action(self._store)
        except StateUnavailable as exc:
            self.status = "unavailable"
            self.warn(f"state store unavailable, continuing without protection: {exc}")
            return default

    def close(self) -> None:
        if self._store is not None and self._shared is None:
            self._store.close()

    @property
    def needs_cost_estimate(self) -> bool:
        """Whether `admit` uses the estimated cost (only budgets do): pricing is skipped otherwise."""
        return self.config.state and bool(self.config.budgets)

    # -- cache ------------------------------------------------------------------------------------

    def cached_response(self, request: LlmRequest) -> LlmResponse | None:
        mode = self.config.cache_mode
        if mode in ("off", "record"):
            return None
        key = cache_key(self.identity, request)
        hit = self._with_store(lambda store: store.cache_get(key))
        if hit is None:
            if mode == "replay":
                raise ReplayMissError(f"replay mode: no recorded response for cache key {key}", field="cache")
            return None
        return LlmResponse(content=hit["content"], usage=Usage(**hit["usage"]), model=hit.get("model"),
                           finish_reason=hit.get("finish_reason"), request_id=hit.get("request_id"))

    def store_response(self, request: LlmRequest, response: LlmResponse) -> None:
        if self.config.cache_mode not in ("read-write", "record"):
            return
        key = cache_key(self.identity, request)
        value = {"content": response.content, "usage": asdict(response.usage), "model": response.model,
                 "finish_reason": response.finish_reason, "request_id": response.request_id}
        self._with_store(lambda store: store.cache_put(key, value))

    # -- before the call --------------------------------------------------------------------------

    async def admit(self, estimated_tokens: int, estimated_cost: float | None, *, remaining: Callable[[], float],
                    sleep: Callable[[float], Awaitable[None]]) -> None:
        """Rate limits (waiting up to the deadline), then the budget reservation."""
        if not self.config.state:
            return
        if self.config.rpm or self.config.tpm:
            while True:
                wait = self._with_store(lambda store: store.transact(
                    [self.identity.rate_key],
                    rate_acquire(self.identity.rate_key, self.config.rpm, self.config.tpm, estimated_tokens,
                                 self.clock())), 0.0)
                if wait <= 0:
                    self._reserved_tokens = estimated_tokens
                    break
                if wait >= remaining():
                    raise LocalRateLimitError(
                        f"local rate limit (rpm={self.config.rpm}, tpm={self.config.tpm}) needs a wait of "
                        f"{wait:.2f} s, past the deadline", retry_after=wait)
                await sleep(wait)
        if self.config.budgets:
            self._reserve_budget(estimated_cost or 0.0, remaining())

    def _reserve_budget(self, amount: float, remaining: float) -> None:
        now = self.clock()
        caps = list(self.config.budgets)
        verdict = self._with_store(lambda store: store.transact(
            [cap.key(now) for cap in caps],
            budget_reserve(caps, amount, now, max(remaining, 0.0) + RESERVATION_GRACE_SECONDS)))
        if verdict is None:
            return  # store unavailable: no protection
        if verdict.reservation is None:
            cap = verdict.refused_by
            raise BudgetExceededError(
                f"budget {cap.scope} ({cap.period} ${cap.limit_usd:g}) has ${verdict.committed_usd:.6f} spent or "
                f"reserved; this call is estimated at ${amount:.6f}", field=cap.scope)
        self._reservation, self._reserved_at = verdict.reservation, now

    def before_attempt(self) -> None:
        if not self.config.state:
            return
        key = self.identity.breaker_key
        # Nearly every call finds its breaker closed: a plain read (no write lock) lets it through.
        # Only an open or half-open breaker needs the transaction that may change it.
        if _closed(self._with_store(lambda store: store.get(key))):
            self._probe = False
            return
        decision = self._with_store(
            lambda store: store.transact([key], breaker_check(key, self.config.breaker, self.clock())))
        if decision is None or decision.allowed:
            self._probe = bool(decision and decision.probe)
            return
        raise CircuitOpenError(
            f"circuit open for {self.identity.provider} {self.identity.model} at {self.identity.endpoint}: recent "
            f"calls failed; next probe in {decision.retry_after:.1f} s", retry_after=decision.retry_after)

    def after_attempt(self, error: LlmError | None) -> None:
        if not self.config.state or isinstance(error, CircuitOpenError):
            return
        key = self.identity.breaker_key
        failed = error is not None and error.retryable
        if not failed and _closed(self._with_store(lambda store: store.get(key)), failures=0):
            return  # nothing to reset: a success on a closed breaker with no failures writes nothing
        label = f"{self.identity.provider} {self.identity.model} {self.identity.endpoint}"
        self._with_store(lambda store: store.transact(
            [key], breaker_record(key, self.config.breaker, self.clock(), failed=failed, label=label)))

    # -- after the call -----------------------------------------------------------------------------

    def finish(self, row: dict[str, Any], usage: Usage | None, cost: float | None) -> None:
        """Settle the reservation with the actual cost, correct the token bucket, append the ledger."""
        if not self.config.state:
            return
        if self._reservation is not None:
            caps = list(self.config.budgets)
            self._with_store(lambda store: store.transact(
                [cap.key(self._reserved_at) for cap in caps],
                budget_settle(caps, self._reservation, cost or 0.0, self._reserved_at, self.clock())))
        if self._reserved_tokens and usage is not None and usage.total_tokens is not None:
            delta = usage.total_tokens - self._reserved_tokens
            self._with_store(lambda store: store.transact([self.identity.rate_key],
                                                          rate_correct(self.identity.rate_key, delta)))
        if not self.config.ledger_text:
            row = {k: v for k, v in row.items() if k not in ("prompt", "output")}
        self._with_store(lambda store: store.append_ledger(row))


def _closed(doc: Doc | None, failures: int | None = None) -> bool:
    """Whether a breaker document (None: never written) is closed, with `failures` failures if given.

    Deciding on a read outside the transaction is safe: the call behaves as if it had come just
    before whatever another process writes between the read and the call."""
    if doc is None:
        return True
    return doc.get("state") == "closed" and (failures is None or doc.get("failures", 0) == failures)
