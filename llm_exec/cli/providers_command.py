"""`llm-exec providers`: the installed providers, built-in and plugins, and how each is configured.

`describe()` does the work (no click), so it can be reused and tested without the CLI. A plugin
that cannot be loaded is listed with its error and the others are listed as usual; the command
then exits 2 (a configuration error, as running that provider would be), so a machine check such
as `llm-exec providers >/dev/null || ...` notices it.
"""

from __future__ import annotations

from typing import Any

import click

from ..errors import ConfigurationError
from ..providers.registry import ProviderEntry, command_line, entries
from ._table import render_table, show_listing

EXAMPLE = """\b
Examples:
  llm-exec providers
  llm-exec providers --json | jq '.providers[] | select(.error == null) | {name, key}'
"""


def describe(entry: ProviderEntry) -> dict[str, Any]:
    """One provider as `providers --json` shows it. Key variables are reported by name and whether
    one is set; their values never leave the environment."""
    from ..config import env_first

    row: dict[str, Any] = {"name": entry.name, "package": entry.package, "version": entry.version,
                           "builtin": entry.builtin, "target": entry.target}
    try:
        provider_cls = entry.load()
    except ConfigurationError as exc:
        return {**row, "error": exc.message}
    # The class that serves a spec without options (llama: the API style the environment picks).
    serving = provider_cls.for_options({})
    key_var, _ = env_first(*serving.key_env_vars)
    try:
        base_url, base_url_error = serving.resolve_base_url(None), None
    except ConfigurationError as exc:
        base_url, base_url_error = None, exc.message
    return {
        **row,
        "provider_id": provider_cls.name,
        "default_model": provider_cls.default_model,
        "agent_types": list(dict.fromkeys([entry.name, *provider_cls.agent_types])),
        "aliases": list(provider_cls.provider_aliases),
        "key": {"env_vars": list(serving.key_env_vars), "required": serving.requires_key, "set": key_var},
        "base_url": base_url,
        "base_url_env_vars": list(serving.base_url_env_vars),
        "base_url_error": base_url_error,
        "can_stream": provider_cls.can_stream,
        "pricing_provider": provider_cls.pricing_provider,
        "executable": provider_cls.executable,
        "run": " ".join(command_line(entry.name, provider_cls.executable)),
        "error": None,
    }


def _key_state(key: dict[str, Any]) -> str:
    if key["set"]:
        return f"set ({key['set']})"
    if not key["env_vars"]:
        return "not required"
    return "missing" if key["required"] else "optional, unset"


def render(rows: list[dict[str, Any]]) -> str:
    headers = ["name", "package", "version", "key", "base URL", "default model", "agent types", "run"]
    cells = []
    notes = []  # an invalid base URL's message is too long for its cell
    for row in rows:
        head = [row["name"], row["package"], row["version"] or "?"]
        if row["error"]:
            cells.append([*head, f"ERROR: {row['error']}"])
            continue
        base_url = row["base_url"] or "none"
        if row["base_url_error"]:
            base_url = "INVALID (below)"
            notes.append(f"{row['name']}: {row['base_url_error']}")
        cells.append([*head, _key_state(row["key"]), base_url, row["default_model"], ",".join(row["agent_types"]),
                      row["run"]])
    return "\n".join([render_table(headers, cells), *(["", *notes] if notes else [])])


@click.command(epilog=EXAMPLE)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def providers(as_json: bool) -> None:
    """List the installed providers: built-ins and `llm_exec.providers` entry-point plugins.

    For each: its package and version, whether a key variable is set (never its value), the base URL
    in force, the default model, the registry agent types it serves and how to run it. A plugin that
    cannot be loaded is shown with its error, the others as usual, and the exit code is 2.
    """
    show_listing("providers", [describe(entry) for entry in entries()], render, as_json=as_json)
