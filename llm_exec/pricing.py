"""Cost in USD from the genai-prices package; None when it does not know the model, never a guess."""

from __future__ import annotations

import warnings

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
