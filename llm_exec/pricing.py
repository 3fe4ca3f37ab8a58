"""Cost in USD from the genai-prices package; None when it does not know the model, never a guess."""

from __future__ import annotations

import warnings
from typing import Any

from .response import Usage


def cost_usd(pricing_provider: str | None, models: tuple[str | None, ...], usage: Usage) -> float | None:
    """Price `usage` for the first of `models` (the API-reported model, then the requested one)
    that genai-prices knows. Local models (pricing_provider None) have no price."""
    if pricing_provider is None or usage.prompt_tokens is None or usage.completion_tokens is None:
        return None
    from genai_prices import Usage as PriceUsage  # deferred: loads a price snapshot
    from genai_prices import calc_price

    # genai-prices' convention: input_tokens is ALL input (cache reads and writes included),
    # with the cached parts given separately so they are priced at their own rates.
    priced_usage = PriceUsage(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        cache_read_tokens=usage.cached_tokens or 0,
        cache_write_tokens=usage.cache_write_tokens or 0,
    )
    for model in models:
        if not model:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                price = calc_price(priced_usage, model, provider_id=pricing_provider)
        except LookupError:
            continue
        return round(float(price.total_price), 10)
    return None


def _calc(pricing_provider: str, model: str, input_tokens: int, output_tokens: int) -> Any:
    """genai-prices' PriceCalculation, or None for a model it does not know."""
    from genai_prices import Usage as PriceUsage  # deferred: loads a price snapshot
    from genai_prices import calc_price

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return calc_price(PriceUsage(input_tokens=input_tokens, output_tokens=output_tokens), model,
                              provider_id=pricing_provider)
    except LookupError:
        return None


def estimate_cost_usd(pricing_provider: str | None, model: str, input_tokens: int, output_tokens: int) -> float | None:
    """What `input_tokens` in and `output_tokens` out would cost on `model`, from genai-prices
    (tiered prices included); None when it does not know the model or it is local."""
    if pricing_provider is None:
        return None
    price = _calc(pricing_provider, model, input_tokens, output_tokens)
    return None if price is None else round(float(price.total_price), 10)


# Probed with a small request: prices that grow with context length (tiers above 200k tokens)
# must report their base rate, which is what a per-1M listing means.
_PROBE_TOKENS = 1000


def price_details(pricing_provider: str | None, model: str) -> tuple[float, float, int | None] | None:
    """(input, output, first_tier) for `model`: USD per 1M tokens at the base tier, and the input
    token count from which a tiered price applies (None when the price is flat). None when
    genai-prices does not know the model, or it is local."""
    if pricing_provider is None:
        return None
    price = _calc(pricing_provider, model, _PROBE_TOKENS, _PROBE_TOKENS)
    if price is None:
        return None
    scale = 1_000_000 // _PROBE_TOKENS
    # Tiered prices (genai-prices' TieredPrices) carry `tiers`; any field's first tier bounds the base rate.
    starts = [tier.start for value in vars(price.model_price).values() for tier in getattr(value, "tiers", None) or ()]
    return (round(float(price.input_price) * scale, 6), round(float(price.output_price) * scale, 6),
            min(starts) if starts else None)
