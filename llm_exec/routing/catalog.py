"""What routing knows about the executors: where they are installed, their default models and
their prices. Everything comes from the provider classes' attributes (`default_model`,
`pricing_provider`), so no provider is named here; whether keys are set is listing.py's.

The answers a decision needs come through facts.ProviderFacts, which keeps them in the route cache
so that a decision imports no provider module; prices come from llm_exec.pricing, which imports
genai-prices only when its rate cache cannot answer.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .facts import ProviderFacts, provider_class
from .registry import Agent
from .rules import CostEstimate

if TYPE_CHECKING:
    from ..state import StateStore


def command_line(executor: str, facts: ProviderFacts | None = None) -> list[str]:
    """How to run `executor` (a registered provider name), its `executable` read from the route
    cache so that no provider module is imported."""
    from ..providers.registry import command_line as provider_command_line  # no provider import

    return provider_command_line(executor, (facts or ProviderFacts()).executable(executor))


def program(executor: str, facts: ProviderFacts | None = None) -> str:
    """The command as a user would type it, for messages and listings."""
    return " ".join(command_line(executor, facts))


def executor_command(executor: str, facts: ProviderFacts | None = None) -> list[str]:
    """The argv that runs `executor`, its program installed next to this interpreter (the same
    virtualenv), else found on PATH."""
    first, *rest = command_line(executor, facts)
    beside = os.path.join(os.path.dirname(sys.executable), first)
    if os.path.isfile(beside):
        return [beside, *rest]
    import shutil  # deferred: only needed when the executor is not beside the interpreter

    found = shutil.which(first)
    if found is None:
        raise ConfigurationError(
            f"{first} not found next to {sys.executable} nor on PATH",
            field="type", error_type="executor_not_found",
        )
    return [found, *rest]


# Per-1M prices are read off two small estimates: small enough to stay below any context tier.
_PROBE_TOKENS = 1000


class ExecutorCatalog:
    """The `Catalog` the rules use in production."""

    _store: StateStore | None = None

    def __init__(self, facts: ProviderFacts | None = None) -> None:
        self.facts = facts or ProviderFacts()

    def default_model(self, executor: str) -> str:
        return self.facts.default_model(executor)

    def circuit_wait(self, agent: Agent, model: str, api_endpoint: str | None) -> float | None:
        """Read-only look at the shared circuit breaker the agent's executor would consult."""
        from ..state import StateUnavailable, open_store, state_enabled

        if not state_enabled():
            return None
        identity = self.facts.breaker_identity(agent, model, api_endpoint)
        if identity is None:
            return None  # a broken endpoint fails in its executor
        provider, breaker_key = identity
        try:
            if self._store is None:
                self._store = open_store()
            doc = self._store.get(breaker_key)
        except (ConfigurationError, StateUnavailable):
            return None  # no store means no protection
        settings = self.facts.breaker_settings(provider)  # raises for invalid settings, with or without a doc
        if doc is None:
            return None  # never tripped: breaker_wait's answer, without importing the policies
        from ..state.policies import BreakerConfig, breaker_wait

        return breaker_wait(doc, BreakerConfig(**settings), time.time())

    def deprecation(self, agent: Agent, model: str) -> dict[str, Any] | None:
        from ..models import deprecation, deprecation_warning  # deferred: asked of kept agents only

        found = deprecation(provider_class(agent.executor).for_options(agent.task_defaults), model)
        return deprecation_warning(model, None, found) if found is not None else None

    def estimate(self, agent: Agent, model: str, input_tokens: int, output_tokens: int) -> CostEstimate:
        if agent.price_per_mtok is not None:
            price = agent.price_per_mtok
            total = (input_tokens * price.input + output_tokens * price.output) / 1_000_000
            return CostEstimate(round(total, 10), price.input, price.output, "registry")
        pricing_provider = self.facts.pricing_provider(agent.executor)
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
