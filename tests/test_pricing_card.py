"""The rate card prices exactly as genai-prices does, for every model of our providers, and the
next process prices from it without importing genai-prices."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from genai_prices.data_snapshot import get_snapshot

from llm_exec import pricing
from llm_exec.response import Usage

PROVIDERS = ("anthropic", "openai", "google")
MODELS = [(provider.id, model.id) for provider in get_snapshot().providers if provider.id in PROVIDERS
          for model in provider.models]


def exact(provider: str, model: str, prompt: int, completion: int, cached: int, written: int) -> float | None:
    price = pricing._calc(provider, model, prompt, completion, cached, written)
    return None if price is None else round(float(price.total_price), 10)


def test_every_model_of_our_providers_is_covered() -> None:
    assert len(MODELS) > 50
    assert {provider for provider, _ in MODELS} == set(PROVIDERS)


@pytest.mark.parametrize(("provider", "model"), MODELS)
def test_card_rates_price_like_genai_prices(provider: str, model: str) -> None:
    rates, _ = pricing.read_rates(provider, model)
    if rates is None:  # its id is not how it is looked up (e.g. "ft:gpt-4o"): unknown both ways
        assert exact(provider, model, 10, 10, 0, 0) is None
        return
    assert pricing.Rates.from_json(json.loads(json.dumps(rates.to_json()))) == rates
    rng = random.Random(f"{provider}/{model}")
    limit = rates.flat_below or 2_000_000
    for _ in range(25):
        prompt = rng.choice([0, 1, 7, 999, rng.randrange(limit)])
        cached = rng.randrange(prompt + 1) if rng.random() < 0.5 else 0
        written = rng.randrange(prompt - cached + 1) if provider == "anthropic" and rng.random() < 0.5 else 0
        completion = rng.choice([0, 1, rng.randrange(100_000)])
        if rates.applies(prompt):
            assert rates.cost(prompt, completion, cached, written) == exact(provider, model, prompt, completion,
                                                                            cached, written), (prompt, cached, written)
    if rates.flat_below:  # at and past the first tier, genai-prices prices it
        assert not rates.applies(rates.flat_below)
        usage = Usage(prompt_tokens=rates.flat_below + 10, completion_tokens=10, cached_tokens=0)
        assert pricing.cost_usd(provider, (model,), usage) == exact(provider, model, rates.flat_below + 10, 10, 0, 0)


def test_unknown_models_have_no_price(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(pricing, "_card", None)
    usage = Usage(prompt_tokens=10, completion_tokens=5)
    assert pricing.cost_usd("openai", ("no-such-model-xyz",), usage) is None
    assert pricing.cost_usd("openai", ("no-such-model-xyz", "gpt-5.4-mini"), usage) == exact("openai", "gpt-5.4-mini",
                                                                                            10, 5, 0, 0)
    card = json.loads((tmp_path / "llm-exec" / "rates.json").read_text())
    assert card["rates"]["openai/no-such-model-xyz"] == {"rates": None, "expires": None, "deprecated": None}


def test_the_next_process_prices_from_the_card(tmp_path: Path) -> None:
    code = ("import sys; from llm_exec.pricing import cost_usd; from llm_exec.response import Usage; "
            "print(cost_usd('anthropic', ('claude-sonnet-4-6',), Usage(prompt_tokens=1200, completion_tokens=80, "
            "cached_tokens=1000, cache_write_tokens=100)), 'genai_prices' in sys.modules)")
    env = {"XDG_CACHE_HOME": str(tmp_path), "PATH": "/usr/bin"}
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    expected = exact("anthropic", "claude-sonnet-4-6", 1200, 80, 1000, 100)
    assert first.split() == [str(expected), "True"]
    assert second.split() == [str(expected), "False"]


def test_a_stale_or_damaged_card_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "rates.json"
    path.write_text(json.dumps({"snapshot": "old", "rates": {"openai/gpt-5.4-mini": {"rates": ["9"] * 5 + [None],
                                                                                       "expires": None}}}))
    assert pricing.RateCard(str(path), "new").rates("openai", "gpt-5.4-mini") == pricing.read_rates(
        "openai", "gpt-5.4-mini")[0]
    path.write_text(json.dumps({"snapshot": "s", "rates": {"openai/gpt-5.4-mini": {"rates": ["x"], "expires": None}}}))
    assert pricing.RateCard(str(path), "s").rates("openai", "gpt-5.4-mini") == pricing.read_rates(
        "openai", "gpt-5.4-mini")[0]
    path.write_text(json.dumps({"snapshot": "s", "rates": {"openai/gpt-5.4-mini": {"rates": ["9"] * 5 + [None],
                                                                                    "expires": 1.0}}}))
    assert pricing.RateCard(str(path), "s").rates("openai", "gpt-5.4-mini") == pricing.read_rates(
        "openai", "gpt-5.4-mini")[0]


def test_the_card_carries_genai_prices_deprecation_flag(tmp_path: Path) -> None:
    """A deprecated model (genai-prices' flag) is known to be deprecated from the card alone."""
    card = pricing.RateCard(str(tmp_path / "rates.json"), "s")
    card.rates("google", "gemini-2.0-flash")
    card.rates("openai", "gpt-5.4-mini")
    again = pricing.RateCard(str(tmp_path / "rates.json"), "s")
    assert again.deprecated("google", "gemini-2.0-flash") is True
    assert again.deprecated("openai", "gpt-5.4-mini") is False
    assert again.deprecated("openai", "never-priced") is None
