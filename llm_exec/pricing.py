"""Cost in USD from the genai-prices package; None when it does not know the model, never a guess.

genai-prices costs ~25 ms to import and ~15 ms more to load its price data, in every one-shot
run: more than the rest of our own code. So each model's rates, once genai-prices has priced it,
are kept in `$XDG_CACHE_HOME/llm-exec/rates.json` (see `RateCard`), valid for the installed price
data and until the next dated price change; the next run prices from the card without importing
genai-prices. The rates are read off genai-prices itself (it prices one probe usage per kind of
token), and the card is used only where the price is linear: below the model's first context
tier, and never for a price that depends on the time of day. Everything else asks genai-prices.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .response import Usage

CARD_VERSION = 1
_PROBE = 1000  # tokens: small enough to stay below every context tier
_MTOK = Decimal(1_000_000)


def cost_usd(pricing_provider: str | None, models: tuple[str | None, ...], usage: Usage) -> float | None:
    """Price `usage` for the first of `models` (the API-reported model, then the requested one)
    that genai-prices knows. Local models (pricing_provider None) have no price."""
    if pricing_provider is None or usage.prompt_tokens is None or usage.completion_tokens is None:
        return None
    cached, written = usage.cached_tokens or 0, usage.cache_write_tokens or 0
    card = rate_card()
    for model in models:
        if not model:
            continue
        rates = card.rates(pricing_provider, model)
        if rates is None:
            continue
        if rates.applies(usage.prompt_tokens):
            return rates.cost(usage.prompt_tokens, usage.completion_tokens, cached, written)
        price = _calc(pricing_provider, model, usage.prompt_tokens, usage.completion_tokens, cached, written)
        if price is not None:
            return round(float(price.total_price), 10)
    return None


def _calc(pricing_provider: str, model: str, input_tokens: int, output_tokens: int, cache_read: int = 0,
          cache_write: int = 0) -> Any:
    """genai-prices' PriceCalculation, or None for a model it does not know."""
    from genai_prices import Usage as PriceUsage  # deferred: loads a price snapshot
    from genai_prices import calc_price

    # genai-prices' convention: input_tokens is ALL input (cache reads and writes included),
    # with the cached parts given separately so they are priced at their own rates.
    usage = PriceUsage(input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=cache_read,
                       cache_write_tokens=cache_write)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return calc_price(usage, model, provider_id=pricing_provider)
    except LookupError:
        return None


def estimate_cost_usd(pricing_provider: str | None, model: str, input_tokens: int, output_tokens: int) -> float | None:
    """What `input_tokens` in and `output_tokens` out would cost on `model`, from genai-prices
    (tiered prices included); None when it does not know the model or it is local."""
    if pricing_provider is None:
        return None
    return cost_usd(pricing_provider, (model,), Usage(prompt_tokens=input_tokens, completion_tokens=output_tokens))


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
    return (round(float(price.input_price) * scale, 6), round(float(price.output_price) * scale, 6),
            _first_tier(price.model_price))


def _first_tier(model_price: Any) -> int | None:
    # Tiered prices (genai-prices' TieredPrices) carry `tiers`; any field's first tier bounds the base rate.
    starts = [tier.start for value in vars(model_price).values() for tier in getattr(value, "tiers", None) or ()]
    return min(starts) if starts else None


def _deprecated(pricing_provider: str, model: str) -> bool:
    price = _calc(pricing_provider, model, 0, 0)
    return bool(price is not None and getattr(price.model, "deprecated", False))


# -- the rate card ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rates:
    """A model's linear price: USD per call, and per 1M tokens of each kind, below `flat_below`
    input tokens (None: at any size)."""

    per_call: Decimal
    uncached_input: Decimal
    cache_read: Decimal
    cache_write: Decimal
    output: Decimal
    flat_below: int | None

    def applies(self, prompt_tokens: int) -> bool:
        return self.flat_below is None or prompt_tokens < self.flat_below

    def cost(self, prompt_tokens: int, completion_tokens: int, cached: int, written: int) -> float:
        tokens = ((prompt_tokens - cached - written) * self.uncached_input + cached * self.cache_read
                  + written * self.cache_write + completion_tokens * self.output)
        return round(float(self.per_call + tokens / _MTOK), 10)

    def to_json(self) -> list[Any]:
        return [str(self.per_call), str(self.uncached_input), str(self.cache_read), str(self.cache_write),
                str(self.output), self.flat_below]

    @classmethod
    def from_json(cls, entry: list[Any]) -> Rates:
        *prices, flat_below = entry
        return cls(*(Decimal(price) for price in prices), None if flat_below is None else int(flat_below))


# Rates that never apply: the model is priced by genai-prices on every call.
EXACT_ONLY = Rates(Decimal(0), Decimal(0), Decimal(0), Decimal(0), Decimal(0), flat_below=0)


def read_rates(pricing_provider: str, model: str) -> tuple[Rates | None, float | None]:
    """Ask genai-prices for `model`'s rates and until when they hold (None: until its price data
    changes). Rates None for a model it does not know; EXACT_ONLY for a price that depends on the
    time of day."""
    base = _calc(pricing_provider, model, 0, 0)
    if base is None:
        return None, None
    info = base.model
    expires = None
    if isinstance(info.prices, list):  # conditional prices: dated changes, or times of day
        from datetime import UTC, date, datetime

        today = datetime.now(UTC).date()
        for conditional in info.prices:
            start = getattr(conditional.constraint, "start_date", None)
            if conditional.constraint is not None and not isinstance(start, date):
                return EXACT_ONLY, None  # e.g. off-peak hours
            if start is not None and start > today:
                at = datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()
                expires = at if expires is None else min(expires, at)

    def per_mtok(**tokens: int) -> Decimal:
        return (_calc(pricing_provider, model, **tokens).total_price - base.total_price) * (_MTOK / _PROBE)

    rates = Rates(
        per_call=base.total_price,
        uncached_input=per_mtok(input_tokens=_PROBE, output_tokens=0),
        cache_read=per_mtok(input_tokens=_PROBE, output_tokens=0, cache_read=_PROBE),
        cache_write=per_mtok(input_tokens=_PROBE, output_tokens=0, cache_write=_PROBE),
        output=per_mtok(input_tokens=0, output_tokens=_PROBE),
        flat_below=_first_tier(base.model_price),
    )
    return rates, expires


class RateCard:
    """Rates per (genai-prices provider, model), from the card on disk or genai-prices; the card is
    valid for one installed price snapshot (the data file's size and mtime). A card that cannot be
    read or written is simply not used."""

    def __init__(self, path: str | None, snapshot: str | None) -> None:
        self.path = path
        self.snapshot = snapshot
        self._entries: dict[str, Any] = self._read()
        self._known: dict[str, tuple[Rates | None, float | None]] = {}  # parsed, for a batch's many calls

    def _read(self) -> dict[str, Any]:
        if self.path is None or self.snapshot is None:
            return {}
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return {}
        valid = isinstance(data, dict) and data.get("snapshot") == self.snapshot and isinstance(data.get("rates"), dict)
        return data["rates"] if valid else {}

    def rates(self, pricing_provider: str, model: str) -> Rates | None:
        """The model's rates; None when genai-prices does not know it (no price, never a guess)."""
        name = f"{pricing_provider}/{model}"
        known = self._known.get(name)
        if known is not None and (known[1] is None or known[1] > time.time()):
            return known[0]
        entry = self._entries.get(name)
        if isinstance(entry, dict) and (entry.get("expires") is None or entry["expires"] > time.time()):
            try:
                rates = None if entry.get("rates") is None else Rates.from_json(entry["rates"])
            except (TypeError, ValueError, ArithmeticError):
                pass  # a damaged entry: read it again
            else:
                self._known[name] = (rates, entry.get("expires"))
                return rates
        rates, expires = read_rates(pricing_provider, model)
        self._known[name] = (rates, expires)
        # genai-prices' deprecation flag rides along: a run can then warn about a deprecated model
        # without loading the price data (llm_exec.models.deprecation).
        self._entries[name] = {"rates": None if rates is None else rates.to_json(), "expires": expires,
                               "deprecated": None if rates is None else _deprecated(pricing_provider, model)}
        self._save()
        return rates

    def deprecated(self, pricing_provider: str, model: str) -> bool | None:
        """genai-prices' `deprecated` flag for a model this card has priced; None when not known."""
        entry = self._entries.get(f"{pricing_provider}/{model}")
        flag = entry.get("deprecated") if isinstance(entry, dict) else None
        return flag if isinstance(flag, bool) else None

    def _save(self) -> None:
        if self.path is None or self.snapshot is None:
            return
        try:
            directory = os.path.dirname(self.path)
            os.makedirs(directory, exist_ok=True)
            import tempfile  # deferred: only when the rate card is (re)written

            # Write-then-rename: concurrent executors never read half a file.
            with tempfile.NamedTemporaryFile("w", dir=directory, prefix=".rates-", suffix=".json", delete=False,
                                             encoding="utf-8") as handle:
                json.dump({"snapshot": self.snapshot, "rates": self._entries}, handle)
            os.replace(handle.name, self.path)
        except OSError:
            pass  # read-only or full: the next run asks genai-prices again


_card: RateCard | None = None


def rate_card() -> RateCard:
    global _card
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "llm-exec", "rates.json")
    # Keyed by its path, not made once: a task forked from llm-exec-daemon has its caller's environment.
    if _card is None or _card.path != path:
        _card = RateCard(path, _snapshot_key())
    return _card


def _snapshot_key() -> str | None:
    """Identifies the installed price data without importing it: its data file's size and mtime."""
    for entry in sys.path:
        try:
            stat = os.stat(os.path.join(entry or ".", "genai_prices", "data.py"))
        except OSError:
            continue
        return f"v{CARD_VERSION}:{stat.st_size}:{stat.st_mtime_ns}"
    return None
