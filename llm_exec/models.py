"""What is known about each provider's models: price per 1M tokens, context window, deprecation.

Two sources, both read off declarations rather than provider names: genai-prices (the models it
prices under the class's `pricing_provider`, their `context_window` and `deprecated` flag) and the
provider's own `model_deprecations()` hook (end-of-life dates, replacements). `catalogue()` lists
them for `llm-exec models`; `deprecation()` is what a run asks about its one model.

`deprecation()` sits on the executors' path, so it never loads genai-prices' price data itself
(~200 ms, more than a whole one-shot run spends on our code): it consults genai-prices only when
something in this process (pricing, the catalogue) has loaded the data already. The provider hook
is the cheap, dated source and is asked first.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import TypedDict

    from .aliases import DeprecationNote
    from .providers.base import BaseLlm
    from .providers.registry import ProviderEntry

    # The catalogue's rows are plain dicts, ready for JSON: declared for the type checker only, as
    # every class built at import costs the executors' start-up time (a dataclass ~1 ms).
    class ModelListing(TypedDict):
        model: str
        name: str | None  # genai-prices' display name
        input_per_mtok: float | None  # USD per 1M input tokens (base tier); None: no known price
        output_per_mtok: float | None
        tiered_from_tokens: int | None  # input tokens from which a higher tier applies; None: flat
        context_window: int | None
        default: bool  # the provider's default_model
        deprecation: dict[str, Any] | None  # a Deprecation, as JSON

    class ProviderModels(TypedDict):
        provider: str  # the registered name (what --provider takes)
        provider_id: str | None  # the class's `name`; None when it could not be loaded
        pricing_provider: str | None
        error: str | None  # a plugin that cannot be loaded
        models: list[ModelListing]

GENAI_PRICES = "genai-prices"
# genai-prices' price data module: present in sys.modules once any price was looked up the slow way.
_PRICE_DATA_MODULE = "genai_prices.data"


@dataclass(frozen=True)
class Deprecation:
    """A model its provider (or genai-prices) says is deprecated."""

    model: str
    end_of_life: str | None  # ISO date, when the source gives one
    replacement: str | None
    source: str  # "provider:<name>" (the class's model_deprecations) or "genai-prices"
    retired: bool  # the end-of-life date is past: calls are expected to fail

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def deprecation(provider_cls: type[BaseLlm], model: str, *, today: date | None = None,
                load_prices: bool = False) -> Deprecation | None:
    """Whether `model` is deprecated for `provider_cls`, or None when no source says so.

    The provider's hook is asked first (it has dates); genai-prices' flag only when its data is
    already loaded in this process, or `load_prices` asks to load it (the catalogue does)."""
    declared = provider_cls.model_deprecations().get(model)
    if declared is not None:
        end_of_life, replacement = declared
        return Deprecation(model, end_of_life, replacement, f"provider:{provider_cls.name}",
                           _past(end_of_life, today))
    if provider_cls.pricing_provider is not None and not load_prices:
        # The rate card carries genai-prices' flag for every model this machine has priced (a run
        # prices its model before it reports), without loading the price data.
        from .pricing import rate_card

        flagged = rate_card().deprecated(provider_cls.pricing_provider, model)
        if flagged is not None:
            return Deprecation(model, None, None, GENAI_PRICES, retired=False) if flagged else None
    info = model_info(provider_cls.pricing_provider, model, load=load_prices)
    if info is not None and info.deprecated:
        return Deprecation(model, None, None, GENAI_PRICES, retired=False)
    return None


def _past(end_of_life: str | None, today: date | None) -> bool:
    if end_of_life is None:
        return False
    try:
        ends = date.fromisoformat(end_of_life)
    except ValueError:  # a hook that declared something else than an ISO date: no claim either way
        return False
    return ends < (today or datetime.now(UTC).date())


def model_info(pricing_provider: str | None, model: str, *, load: bool = True) -> Any:
    """genai-prices' ModelInfo matching `model` (its own match rules: dated ids, aliases), or None
    when it does not know it, the model is local, or `load` is false and its data is not loaded."""
    if pricing_provider is None or (not load and _PRICE_DATA_MODULE not in sys.modules):
        return None
    from genai_prices.data_snapshot import get_snapshot

    try:
        _, info = get_snapshot().find_provider_model(model, None, pricing_provider, None)
    except LookupError:
        return None
    return info


# -- the catalogue -------------------------------------------------------------------------------


def catalogue(entries: Iterable[ProviderEntry], *, today: date | None = None) -> list[ProviderModels]:
    """Every known model of each provider in `entries`; a plugin that cannot be loaded is listed
    with its error and no models, and never hides the others."""
    from .errors import ConfigurationError

    listed: list[ProviderModels] = []
    for entry in entries:
        try:
            provider_cls = entry.load()
        except ConfigurationError as exc:
            listed.append({"provider": entry.name, "provider_id": None, "pricing_provider": None,
                           "error": exc.message, "models": []})
            continue
        listed.append({"provider": entry.name, "provider_id": provider_cls.name,
                       "pricing_provider": provider_cls.pricing_provider, "error": None,
                       "models": known_models(provider_cls, today=today)})
    return listed


def known_models(provider_cls: type[BaseLlm], *, today: date | None = None) -> list[ModelListing]:
    """The models genai-prices prices for the class's `pricing_provider` (its own, not those it
    resells), its default model and the models its hook declares deprecated; by id, each once."""
    from .pricing import price_details

    pricing_provider = provider_cls.pricing_provider
    names: dict[str, None] = dict.fromkeys(_priced_model_ids(pricing_provider))
    names.setdefault(provider_cls.default_model)
    names.update(dict.fromkeys(_declared(provider_cls.model_deprecations())))
    listings: list[ModelListing] = []
    for model in sorted(names):
        details = price_details(pricing_provider, model)
        info = model_info(pricing_provider, model)
        deprecated = deprecation(provider_cls, model, today=today, load_prices=True)
        listings.append({
            "model": model,
            "name": getattr(info, "name", None),
            "input_per_mtok": None if details is None else details[0],
            "output_per_mtok": None if details is None else details[1],
            "tiered_from_tokens": None if details is None else details[2],
            "context_window": getattr(info, "context_window", None),
            "default": model == provider_cls.default_model,
            "deprecation": None if deprecated is None else deprecated.to_json(),
        })
    return listings


def _priced_model_ids(pricing_provider: str | None) -> list[str]:
    """The ids genai-prices prices under `pricing_provider`, less those its model-name rules give to
    another vendor: a cloud's price list holds models it resells (another vendor's, served by a
    different API), which that vendor's own executor runs, not this one."""
    if pricing_provider is None:
        return []
    from genai_prices.data_snapshot import find_provider_by_id, get_snapshot

    snapshot = get_snapshot()
    provider = find_provider_by_id(snapshot.providers, pricing_provider)
    if provider is None:
        return []

    def vendor(model_id: str) -> str | None:
        try:
            return snapshot.find_provider(model_id, None, None).id
        except LookupError:
            return None

    return [model.id for model in provider.models if vendor(model.id) in (None, provider.id)]


def _declared(table: Mapping[str, Any]) -> list[str]:
    return [model for model in table if isinstance(model, str)]


def deprecation_warning(model: str, note: DeprecationNote | None, found: Deprecation | None) -> dict[str, Any]:
    """The result's warning object: a local note (alias file, registry) wins over what the provider
    or genai-prices says, field by field."""
    end_of_life = (note.end_of_life if note else None) or (found.end_of_life if found else None)
    replacement = (note.replacement if note else None) or (found.replacement if found else None)
    source = note.source if note else found.source if found else "unknown"
    retired = _past(end_of_life, None)
    message = f"model {model} is {'retired' if retired else 'deprecated'}"
    if end_of_life:
        message += f" (end of life {end_of_life})" if not retired else f" since {end_of_life}"
    if replacement:
        message += f"; use {replacement} instead"
    return {"type": "model_deprecated", "model": model, "end_of_life": end_of_life, "replacement": replacement,
            "retired": retired, "source": source, "message": message}
