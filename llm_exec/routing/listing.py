"""`llm-route agents`: the registry as a table (or JSON) with models, prices and key status."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from ..config import Secrets, environ
from ..errors import LlmError
from ..result import Output
from .catalog import ExecutorCatalog, program
from .facts import provider_class
from .registry import Agent, Registry, load_registry


@dataclass(frozen=True)
class ListOptions:
    registry_path: str | None = None
    as_json: bool = False
    program: str = "llm-route"


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
    cls = provider_class(agent.executor)  # imports the provider module: fine for a listing
    present = [name for name in cls.key_env_vars if env.get(name)]
    if present:
        return KeyStatus(True, (present[0],))
    return KeyStatus(False if cls.requires_key else None, tuple(cls.key_env_vars))


def describe_agents(registry: Registry) -> list[dict[str, Any]]:
    catalog = ExecutorCatalog()
    rows = []
    for agent in registry.agents:
        model = agent.model or catalog.default_model(agent.executor)
        # Price per 1M tokens = the estimate for 1M input (resp. output) tokens at the base rate.
        cost = catalog.estimate(agent, model, 0, 0)
        keys = key_status(agent)
        rows.append({
            "name": agent.name,
            "type": agent.type,
            "executor": program(agent.executor),
            "interface": agent.interface,
            "model": model,
            "enabled": agent.enabled,
            "default": agent.name == registry.default_agent,
            "capabilities": list(agent.capabilities),
            "price_per_mtok": cost.price_dict(),
            "price_note": cost.note,
            "key": {"present": keys.present, "variables": list(keys.variables), "status": keys.describe()},
            "metadata": dict(agent.metadata),
        })
    return rows


def _money(value: float | None) -> str:
    return "?" if value is None else f"${value:g}"


def render_table(registry: Registry, rows: list[dict[str, Any]]) -> str:
    header = ("NAME", "TYPE", "MODEL", "ON", "CAPABILITIES", "IN/1M", "OUT/1M", "KEY")
    table = [header]
    for row in rows:
        price = row["price_per_mtok"] or {}
        name = row["name"] + (" *" if row["default"] else "")
        table.append((name, row["type"], row["model"], "yes" if row["enabled"] else "no",
                      ",".join(row["capabilities"]) or "-", _money(price.get("input")), _money(price.get("output")),
                      row["key"]["status"]))
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in table]
    notes = [f"registry: {registry.path}"]
    if registry.default_agent:
        notes.append("* default_agent")
    if any(row["price_per_mtok"] is None for row in rows):
        notes.append("? price unknown (local model, or not in genai-prices): set price_per_mtok in the registry")
    return "\n".join([*lines, "", *notes]) + "\n"


def list_agents(options: ListOptions) -> int:
    secrets = Secrets.from_env()
    try:
        registry = load_registry(options.registry_path)
        rows = describe_agents(registry)
    except LlmError as error:
        from .router import failure_result  # the same failure object as a routed task

        sys.stderr.write(secrets.redact(f"{options.program}: {error.type}: {error.message}\n"))
        Output(None, secrets).result(failure_result(error, None))
        return error.exit_code
    if options.as_json:
        Output(None, secrets).result({"registry": registry.path, "default_agent": registry.default_agent,
                                      "agents": rows})
    else:
        sys.stdout.write(secrets.redact(render_table(registry, rows)))
        sys.stdout.flush()
    return 0
