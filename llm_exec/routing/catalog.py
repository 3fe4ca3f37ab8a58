"""What routing knows about the executors: where they are installed, their default models, their
prices and whether their keys are set. Everything comes from the provider classes' attributes
(`default_model`, `pricing_provider`, `key_env_vars`, `requires_key`), so no provider is named here.

Importing a provider module is cheap (SDKs are imported only when a call is made); prices come from
llm_exec.pricing, which imports genai-prices only when its rate cache cannot answer.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import environ
from ..errors import ConfigurationError
from ..providers.registry import get_provider
from .registry import Agent
from .rules import CostEstimate

if TYPE_CHECKING:
    from ..providers.base import BaseLlm
    from ..state import StateStore


def program(executor: str) -> str:
    return f"llm-exec-{executor}"


def executor_path(executor: str) -> str:
    """The executor installed next to this interpreter (the same virtualenv), else on PATH."""
    beside = Path(sys.executable).parent / program(executor)
    if beside.is_file():
        return str(beside)
    found = shutil.which(program(executor))
    if found is None:
        raise ConfigurationError(
            f"{program(executor)} not found next to {sys.executable} nor on PATH",
            field="type", error_type="executor_not_found",
        )
    return found


@cache
def provider_class(executor: str) -> type[BaseLlm]:
    return get_provider(executor)


@dataclass(frozen=True)
class KeyStatus:
    present: bool | None  # None = no key needed
    variables: tuple[str, ...]

    def describe(self) -> str:
        names = " or ".join(self.variables)
        if self.present is None:
            return f"not required ({names} unset)" if names else "not required"
        return f"set ({names})" if self.present else f"missing ({names})"


def key_status(agent: Agent) -> KeyStatus:
    env = environ()
    if agent.api_key_env:
        return KeyStatus(bool(env.get(agent.api_key_env)), (agent.api_key_env,))
    cls = provider_class(agent.executor)
    present = [name for name in cls.key_env_vars if env.get(name)]
    if present:
        return KeyStatus(True, (present[0],))
    return KeyStatus(False if cls.requires_key else None, tuple(cls.key_env_vars))


# Per-1M prices are read off two small estimates: small enough to stay below any context tier.
_PROBE_TOKENS = 1000


class ExecutorCatalog:
    """The `Catalog` the rules use in production."""

    _store: StateStore | None = None

    def default_model(self, executor: str) -> str:
        return provider_class(executor).default_model

    def circuit_wait(self, agent: Agent, model: str, api_endpoint: str | None) -> float | None:
        """Read-only look at the shared circuit breaker the agent's executor would consult."""
        from ..state import StateUnavailable, open_store, state_enabled

        if not state_enabled():
            return None
        from ..state.guard import CallIdentity, GuardConfig
        from ..state.policies import breaker_wait

        cls = provider_class(agent.executor).for_options(agent.task_defaults)
        try:
            base_url = cls.resolve_base_url(api_endpoint) or ""
            identity = CallIdentity(cls.name, model, base_url, key_fingerprint="")
            if self._store is None:
                self._store = open_store()
            doc = self._store.get(identity.breaker_key)
        except (ConfigurationError, StateUnavailable):
            return None  # a broken endpoint fails in its executor; no store means no protection
        return breaker_wait(doc, GuardConfig.from_env(cls.name).breaker, time.time())

    def estimate(self, agent: Agent, model: str, input_tokens: int, output_tokens: int) -> CostEstimate:
        if agent.price_per_mtok is not None:
            price = agent.price_per_mtok
            total = (input_tokens * price.input + output_tokens * price.output) / 1_000_000
            return CostEstimate(round(total, 10), price.input, price.output, "registry")
        pricing_provider = provider_class(agent.executor).pricing_provider
        if pricing_provider is None:
            return CostEstimate(None, note="local model: no price (state one with price_per_mtok in the registry)")
        # Deferred: llm_exec.pricing loads genai-prices only when its rate cache cannot answer.
        from ..pricing import estimate_cost_usd

        total = estimate_cost_usd(pricing_provider, model, input_tokens, output_tokens)
        if total is None:
            return CostEstimate(None, note=f"genai-prices does not know {pricing_provider} model {model!r}")
        base = estimate_cost_usd(pricing_provider, model, 0, 0) or 0.0  # a per-request price, if any
        scale = 1_000_000 / _PROBE_TOKENS
        per_input = ((estimate_cost_usd(pricing_provider, model, _PROBE_TOKENS, 0) or 0.0) - base) * scale
        per_output = ((estimate_cost_usd(pricing_provider, model, 0, _PROBE_TOKENS) or 0.0) - base) * scale
        return CostEstimate(total, round(per_input, 6), round(per_output, 6), "genai-prices")
