"""`llm-exec models` and llm_exec.models: prices as genai-prices computes them, context windows,
and deprecations from the provider's own table (with ISO end-of-life dates) and genai-prices."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from genai_prices import Usage, calc_price
from genai_prices.data_snapshot import find_provider_by_id, get_snapshot

from llm_exec.models import Deprecation, deprecation
from llm_exec.providers.registry import builtin_entries, get_provider
from tests.cli.conftest import run_tool


def _priced_entries() -> list:
    return [entry for entry in builtin_entries() if entry.load().pricing_provider]


def _sdk_deprecated_entry():
    """The built-in whose class declares deprecations (the one reading its SDK's table)."""
    return next(entry for entry in builtin_entries() if entry.load().model_deprecations())


def test_prices_equal_genai_prices_for_each_default_model() -> None:
    run = run_tool("models", "--json")
    assert run.code == 0, run.stderr
    listed = {provider["provider"]: provider for provider in run.json()["providers"]}
    for entry in _priced_entries():
        cls = entry.load()
        provider = listed[entry.name]
        assert provider["pricing_provider"] == cls.pricing_provider and provider["error"] is None
        (row,) = [m for m in provider["models"] if m["model"] == cls.default_model]
        assert row["default"] is True
        million = calc_price(Usage(input_tokens=1_000_000), cls.default_model, provider_id=cls.pricing_provider)
        out = calc_price(Usage(output_tokens=1_000_000), cls.default_model, provider_id=cls.pricing_provider)
        if row["tiered_from_tokens"] is None:  # a tiered price's base rate is not the 1M-token price
            assert Decimal(str(row["input_per_mtok"])) == million.total_price
        assert Decimal(str(row["output_per_mtok"])) == out.total_price
        assert row["context_window"] == million.model.context_window
        # every model genai-prices knows for the provider is listed, but not another vendor's it resells
        snapshot = get_snapshot()
        known = {m.id for m in find_provider_by_id(snapshot.providers, cls.pricing_provider).models}
        listed_ids = {m["model"] for m in provider["models"]}
        for model in known:
            try:
                vendor = snapshot.find_provider(model, None, None).id
            except LookupError:
                vendor = None
            assert (model in listed_ids) == (vendor in (None, cls.pricing_provider)), model


def test_local_providers_list_their_default_model_without_price() -> None:
    run = run_tool("models", "--json")
    for entry in builtin_entries():
        cls = entry.load()
        if cls.pricing_provider is None:
            (provider,) = [p for p in run.json()["providers"] if p["provider"] == entry.name]
            assert [(m["model"], m["input_per_mtok"], m["output_per_mtok"]) for m in provider["models"]] == [
                (cls.default_model, None, None)]


def _sdk_table() -> dict[str, str]:
    """The SDK's table as the SDK itself exposes it, its dates parsed here independently (strptime)."""
    from anthropic._data import DEPRECATED_MODELS

    return {model: datetime.strptime(re.sub(r"(\d)(st|nd|rd|th)", r"\1", when), "%B %d, %Y").date().isoformat()
            for model, when in DEPRECATED_MODELS.items()}


def test_provider_deprecations_appear_with_iso_dates() -> None:
    table = _sdk_table()
    assert table, "the SDK's table is empty: nothing to check"
    entry = _sdk_deprecated_entry()
    run = run_tool("models", "--json", "--provider", entry.name)
    assert run.code == 0
    (provider,) = run.json()["providers"]
    rows = {m["model"]: m for m in provider["models"]}
    today = datetime.now(UTC).date()
    for model, iso in table.items():
        assert rows[model]["deprecation"] == {
            "model": model, "end_of_life": iso, "replacement": None, "source": f"provider:{entry.load().name}",
            "retired": date.fromisoformat(iso) < today}
    text = run_tool("models", "--provider", entry.name)
    for model, iso in table.items():
        line = next(line for line in text.stdout.splitlines() if line.split()[1:2] == [model])
        assert f"(end of life {iso})" in line and ("retired" in line or "deprecated" in line)


def test_genai_prices_deprecated_flag_is_a_source() -> None:
    for entry in _priced_entries():
        cls = entry.load()
        flagged = [m.id for m in find_provider_by_id(get_snapshot().providers, cls.pricing_provider).models
                   if m.deprecated and m.id not in cls.model_deprecations()]
        if flagged:
            break
    else:
        raise AssertionError("genai-prices flags no model of a built-in provider as deprecated")
    run = run_tool("models", "--json", "--provider", entry.name)
    row = next(m for m in run.json()["providers"][0]["models"] if m["model"] == flagged[0])
    assert row["deprecation"] == {"model": flagged[0], "end_of_life": None, "replacement": None,
                                  "source": "genai-prices", "retired": False}


def test_deprecation_retired_follows_the_date() -> None:
    entry = _sdk_deprecated_entry()
    cls = entry.load()
    model, (end_of_life, _) = next(iter(cls.model_deprecations().items()))
    ends = date.fromisoformat(end_of_life)
    assert deprecation(cls, model, today=ends).retired is False  # the last day still serves
    assert deprecation(cls, model, today=ends + timedelta(days=1)).retired is True
    assert isinstance(deprecation(cls, model), Deprecation)
    assert deprecation(cls, cls.default_model) is None


def test_deprecation_is_cheap_for_a_model_that_is_not_deprecated() -> None:
    """No SDK and no genai-prices import on the executors' path."""
    name = _sdk_deprecated_entry().name  # the one whose hook reads its SDK's table
    code = ("import sys; from llm_exec.models import deprecation; "
            "from llm_exec.providers.registry import get_provider; "
            f"cls = get_provider({name!r}); assert deprecation(cls, cls.default_model) is None; "
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('genai_prices', 'anthropic', 'openai', 'google')]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    assert out.stdout.strip() == "[]"
    assert get_provider(name).model_deprecations() is get_provider(name).model_deprecations()  # cached


def test_unknown_provider_is_a_usage_error() -> None:
    run = run_tool("models", "--provider", "no-such-provider")
    assert run.code == 2 and "unknown provider 'no-such-provider'" in run.stderr


def test_a_broken_plugin_is_listed_and_exit_2(plugin_path: dict[str, str]) -> None:
    run = run_tool("models", "--json", env=plugin_path)
    assert run.code == 2
    listed = {p["provider"]: p for p in run.json()["providers"]}
    assert "cannot be imported: ImportError" in listed["zz-import-fails"]["error"]
    assert listed["zz-import-fails"]["models"] == []
    assert [m["model"] for m in listed["zz-working"]["models"]] == ["zz-model-1"]
    assert all(listed[entry.name]["models"] for entry in builtin_entries())
