"""`llm-exec models`: each provider's known models, prices, context windows and deprecations.

The catalogue is llm_exec.models; this module only picks the providers and prints. Like
`llm-exec providers`, a plugin that cannot be loaded is listed with its error and the exit code is 2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ..errors import ConfigurationError
from ..models import catalogue
from ..providers.registry import BUILTIN, entries, find_entry
from ._table import render_table, show_listing

if TYPE_CHECKING:
    from ..models import ProviderModels

EXAMPLE = f"""\b
Examples:
  llm-exec models
  llm-exec models --provider {next(iter(BUILTIN))}
  llm-exec models --json | jq '.providers[].models[] | select(.deprecation != null)'
"""


def _price(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def _status(listing: dict[str, Any]) -> str:
    deprecation = listing["deprecation"]
    if deprecation is None:
        return ""
    state = "retired" if deprecation["retired"] else "deprecated"
    if deprecation["end_of_life"]:
        state += f" (end of life {deprecation['end_of_life']})"
    if deprecation["replacement"]:
        state += f", use {deprecation['replacement']}"
    return state


def render(listed: list[ProviderModels]) -> str:
    headers = ["provider", "model", "in $/1M", "out $/1M", "context", "status"]
    cells: list[list[str]] = []
    for provider in listed:
        if provider["error"]:
            cells.append([provider["provider"], f"ERROR: {provider['error']}"])
            continue
        for row in provider["models"]:
            model = f"{row['model']} (default)" if row["default"] else row["model"]
            tier = f" (<{row['tiered_from_tokens']} tok)" if row["tiered_from_tokens"] else ""
            cells.append([provider["provider"], model, _price(row["input_per_mtok"]) + tier,
                          _price(row["output_per_mtok"]), str(row["context_window"] or "?"), _status(row)])
    return render_table(headers, cells)


@click.command(epilog=EXAMPLE)
@click.option("--provider", "provider_name", metavar="NAME",
              help="Only this provider (a name from `llm-exec providers`, or one of its aliases).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def models(provider_name: str | None, as_json: bool) -> None:
    """List each provider's known models: price per 1M input/output tokens, context window, deprecation.

    Prices and context windows come from genai-prices (by the provider's pricing id; `?` when it
    does not know the model, and local models have none); deprecations from the provider itself
    (with end-of-life dates, e.g. the SDK's own table) and from genai-prices' deprecated flag. A
    model whose end-of-life date has passed is shown as retired. Tiered prices show their base rate
    and the input size below which it applies.
    """
    if provider_name is None:
        selected = entries()
    else:
        try:
            selected = [find_entry(provider_name)]
        except ConfigurationError as exc:
            raise click.BadParameter(exc.message, param_hint="--provider") from exc
    show_listing("models", catalogue(selected), render, as_json=as_json)
