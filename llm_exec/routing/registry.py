"""The agent registry: YAML on disk -> validated `Registry`, or a ConfigurationError (exit 2) that
names the file, the YAML line and the field at fault ("line 14: agents[2].type: ...").

PyYAML's safe constructor builds the data (on libyaml's parser when available; PyYAML's own parser
reports any error); the composed node tree beside it gives every value its line, since plain dicts
and lists keep none. Validation is JSON Schema (schemas/registry.schema.json, Draft 2020-12) -- a
check compiled from the schema passes a valid registry, jsonschema names the problems of any other
-- then the checks a schema cannot express: unique names, a known `default_agent`, and
`task_defaults` that the task schema accepts. A valid registry read from a file is kept in the
route cache (_cache.py) with its text, so the next run with the same text skips all of this.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..aliases import AliasTable, parse_sections
from ..config import environ
from ..errors import ConfigurationError, TaskSpecError
from ..yaml_lines import Lines, Problem, format_path, invalid, line_of, load_yaml

REGISTRY_ENV = "LLM_EXEC_REGISTRY"
LOCAL_REGISTRY = "llm-exec.yaml"
# A registry is a hand-written config file; anything this large is a mistake, not a registry.
MAX_REGISTRY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class PricePerMtok:
    """An agent's stated price: USD per 1M input and output tokens."""

    input: float
    output: float


@dataclass(frozen=True)
class Agent:
    """One validated `agents[]` entry of the registry."""

    name: str
    type: str
    executor: str
    index: int  # position in the registry: the final tie-breaker
    line: int
    interface: str = "api"
    model: str | None = None
    capabilities: tuple[str, ...] = ()
    enabled: bool = True
    api_endpoint: str | None = None
    api_key_env: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    price_per_mtok: PricePerMtok | None = None
    task_defaults: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    rpm: float | None = None
    tpm: float | None = None
    budget: Mapping[str, float] = field(default_factory=dict)  # {"daily_usd": x, "monthly_usd": y}
    # Tokens the agent's model takes (prompt + output); None = unknown. Decides the failover after
    # context_length_exceeded (spawn.py): only agents with a larger known window are tried.
    context_window: int | None = None

    def spec_defaults(self) -> dict[str, Any]:
        """The task-spec fields this agent contributes; the task's own fields win over them."""
        defaults = dict(self.task_defaults)
        for name in ("model", "api_endpoint", "api_key_env", "max_tokens", "temperature"):
            value = getattr(self, name)
            if value is not None:
                defaults[name] = value
        return defaults


@dataclass(frozen=True)
class Registry:
    """A validated registry: its agents in file order, and the registry-wide settings."""

    path: str
    agents: tuple[Agent, ...]
    default_agent: str | None = None
    complexity_tiers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    name: str | None = None
    budget: Mapping[str, float] = field(default_factory=dict)
    aliases: AliasTable = field(default_factory=AliasTable)  # its `aliases:` and `deprecated:`

    def get(self, name: str) -> Agent | None:
        return next((agent for agent in self.agents if agent.name == name), None)

    def budget_caps(self, agent: Agent) -> list[dict[str, Any]]:
        """The spend caps an executor running `agent` must reserve against (LLM_EXEC_BUDGETS)."""
        scope = self.name or str(Path(self.path).resolve())
        caps = [{"scope": f"agent:{agent.name}", **agent.budget}] if agent.budget else []
        if self.budget:
            caps.append({"scope": f"registry:{scope}", **self.budget})
        return caps


def candidate_paths() -> list[Path]:
    """Where the registry is looked for, in order (when --registry is not given)."""
    env = environ()
    if env.get(REGISTRY_ENV):
        return [Path(env[REGISTRY_ENV])]
    config_home = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return [Path(LOCAL_REGISTRY), Path(config_home) / "llm-exec" / "registry.yaml"]


def find_registry(explicit: str | None = None) -> Path:
    if explicit:
        return Path(explicit)
    paths = candidate_paths()
    for path in paths:
        if path.is_file():
            return path
    source = f"${REGISTRY_ENV}" if environ().get(REGISTRY_ENV) else "the default locations"
    raise ConfigurationError(
        f"no agent registry found (looked in {source}: {', '.join(str(p) for p in paths)}); "
        f"pass --registry FILE or set {REGISTRY_ENV}",
        field="registry", error_type="registry_not_found",
    )


def load_registry(explicit: str | None = None) -> Registry:
    path = find_registry(explicit)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_REGISTRY_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(f"cannot read agent registry {path}: {exc.strerror or exc}",
                                 field="registry", error_type="registry_not_found") from None
    if len(data) > MAX_REGISTRY_BYTES:
        raise _invalid(path, [(None, None, f"file is larger than {MAX_REGISTRY_BYTES} bytes")])
    return _parse_cached(data, str(path))


def parse_registry(data: bytes | str, path: str = "<registry>") -> Registry:
    document, agent_lines, executors = _validated(data, path)
    return _build(document, agent_lines, executors, path)


def _validated(data: bytes | str, path: str) -> tuple[dict[str, Any], list[int], list[str]]:
    """The registry's document, valid, the line of each agent and the provider that serves each
    agent's type; or the ConfigurationError listing every problem found (schema and semantic
    checks in one run, so one edit fixes them all)."""
    document, lines = _load_yaml(data, path)
    if document is None:
        raise _invalid(path, [(None, None, "the file is empty (expected version: 1 and a list of agents)")])
    executors: list[str] = []
    problems = _schema_problems(document, lines) + _semantic_problems(document, lines, executors)
    if problems:
        raise _invalid(path, sorted(problems, key=lambda p: (p[0] or 0, p[1] or "")))
    return document, [line_of(lines, ("agents", index)) or 0 for index in range(len(document["agents"]))], executors


# -- the parsed-registry cache -----------------------------------------------------------------
#
# A valid registry's document is kept in the route cache (see _cache.py) with the file's whole text:
# a run whose registry reads byte for byte the same, under the same llm_exec code, builds the
# Registry from JSON without importing PyYAML or validating again (~10 ms, ~50 ms when jsonschema
# would be needed). An invalid registry is never cached: its errors are derived every time.


def _cache_name(path: str) -> str:
    import zlib  # a file name per registry path; the text inside is what decides a hit

    return f"registry-{zlib.crc32(os.path.abspath(path).encode('utf-8', 'surrogateescape')):08x}.json"


def _parse_cached(data: bytes, path: str) -> Registry:
    from . import _cache

    name = _cache_name(path)
    source = data.decode("utf-8", "surrogateescape")  # lossless: compared exactly with the cached text
    entry = _cache.read(name)
    if entry is not None and entry.get("source") == source:
        try:
            return _build(entry["document"], entry["agent_lines"], entry["executors"], path)
        except (LookupError, TypeError, ValueError, AttributeError):
            pass  # a damaged entry (or one from an older format): derive it again
    document, agent_lines, executors = _validated(data, path)
    registry = _build(document, agent_lines, executors, path)
    if _json_exact(document):
        _cache.write(name, {"source": source, "document": document, "agent_lines": agent_lines,
                            "executors": executors})
    return registry


def _json_exact(document: Any) -> bool:
    """Whether JSON gives `document` back unchanged: YAML can also build dates, sets, binary,
    pairs and non-string keys (in free-form metadata), which JSON would alter or refuse. JSON keeps
    int, float and bool apart, so equality after the round trip means the same values and types."""
    import json

    try:
        return json.loads(json.dumps(document)) == document
    except (TypeError, ValueError, RecursionError):
        return False


# -- validation ----------------------------------------------------------------------------------

@cache
def _fast_check() -> Any:
    from ..schema_check import compile_schema
    from ..task import load_schema

    return compile_schema(load_schema("registry"))


def _schema_problems(document: Any, lines: Lines) -> list[Problem]:
    check = _fast_check()
    if check is not None and check(document):
        return []  # valid: jsonschema (only needed to name problems) stays unimported
    from ..task import did_you_mean, load_schema

    validator = _validator(load_schema("registry"))
    problems: list[Problem] = []
    for error in validator.iter_errors(document):
        path = tuple(error.absolute_path)
        message = error.message
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = error.schema.get("properties", {})
            for name in sorted(k for k in error.instance if k not in allowed):
                problems.append((line_of(lines, (*path, name)), format_path((*path, name)),
                                 f"unknown field {name!r}{did_you_mean(str(name), allowed)}"))
            continue
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [name for name in error.validator_value if name not in error.instance]
            message = f"missing required field {missing[0]!r}" if missing else message
        problems.append((line_of(lines, path), format_path(path), message))
    return sorted(problems, key=lambda p: (p[0] or 0, p[1] or ""))


def _validator(schema: dict[str, Any]) -> Any:
    from jsonschema import Draft202012Validator  # deferred: start-up time

    return Draft202012Validator(schema)


def _semantic_problems(document: Any, lines: Lines, executors: list[str]) -> list[Problem]:
    """What the schema cannot say: unique names, types an installed provider serves, a known
    default_agent, valid task_defaults. Run on schema-invalid documents too, so it reads every
    value defensively; `executors` receives the provider name of each agent."""
    from ..providers.registry import provider_for_agent_type
    from ..task import validate as validate_task

    problems: list[Problem] = []
    first_seen: dict[str, int] = {}
    agents = document.get("agents") if isinstance(document, dict) else None
    for index, agent in enumerate(agents if isinstance(agents, list) else ()):
        if not isinstance(agent, dict):
            continue
        name = agent.get("name")
        path = ("agents", index, "name")
        if isinstance(name, str) and name in first_seen:
            problems.append((line_of(lines, path), format_path(path),
                             f"duplicate agent name {name!r} (first defined at agents[{first_seen[name]}])"))
        if isinstance(name, str):
            first_seen.setdefault(name, index)
        agent_type = agent.get("type")
        if isinstance(agent_type, str) and agent_type:
            try:
                executors.append(provider_for_agent_type(agent_type))
            except ConfigurationError as exc:
                where = ("agents", index, "type")
                problems.append((line_of(lines, where), format_path(where), exc.message))
        defaults = agent.get("task_defaults")
        if defaults and isinstance(defaults, dict):
            try:
                validate_task({"prompt": "-", **defaults})
            except TaskSpecError as exc:  # names the field within the task spec
                field_name = exc.field
                where = ("agents", index, "task_defaults", *((field_name.split(".")[0],) if field_name else ()))
                problems.append((line_of(lines, where), format_path(where), str(exc)))
    if isinstance(document, dict):
        parse_sections(document, lines, "<registry>", problems)
    default = document.get("default_agent") if isinstance(document, dict) else None
    if isinstance(default, str) and isinstance(agents, list) and default not in first_seen:
        problems.append((line_of(lines, ("default_agent",)), "default_agent",
                         f"default_agent {default!r} is not an agent in this registry"))
    return problems


def _invalid(path: str | Path, problems: list[Problem]) -> ConfigurationError:
    return invalid(path, problems, "agent registry", "invalid_registry")


def _load_yaml(data: bytes | str, path: str) -> tuple[Any, Lines]:
    return load_yaml(data, path, "agent registry", "invalid_registry")


# -- construction --------------------------------------------------------------------------------


def _build(document: dict[str, Any], agent_lines: list[int], executors: list[str], path: str) -> Registry:
    return Registry(
        path=path,
        agents=tuple(_agents(document, agent_lines, executors)),
        default_agent=document.get("default_agent"),
        complexity_tiers={k: tuple(v) for k, v in (document.get("complexity_tiers") or {}).items()},
        name=document.get("name"),
        budget=_caps(document.get("budget")),
        # Validated with their lines in _semantic_problems; built here without them (from the cache
        # too), so an alias's source is the registry's path.
        aliases=parse_sections(document, {}, path, []),
    )


def _caps(raw: Mapping[str, Any] | None) -> dict[str, float]:
    return {k: float(v) for k, v in (raw or {}).items() if v is not None}


def _agents(document: dict[str, Any], agent_lines: list[int], executors: list[str]) -> Iterator[Agent]:
    if len(executors) != len(document["agents"]):
        raise ValueError("one executor per agent")  # a damaged cache entry: derived again
    for index, raw in enumerate(document["agents"]):
        price = raw.get("price_per_mtok")
        yield Agent(
            name=raw["name"],
            type=raw["type"],
            executor=executors[index],
            index=index,
            line=agent_lines[index],
            interface=raw.get("interface", "api"),
            model=raw.get("model"),
            capabilities=tuple(raw.get("capabilities") or ()),
            enabled=raw.get("enabled", True),
            api_endpoint=raw.get("api_endpoint"),
            api_key_env=raw.get("api_key_env"),
            max_tokens=raw.get("max_tokens"),
            temperature=raw.get("temperature"),
            price_per_mtok=PricePerMtok(float(price["input"]), float(price["output"])) if price else None,
            task_defaults=dict(raw.get("task_defaults") or {}),
            metadata=dict(raw.get("metadata") or {}),
            rpm=raw.get("rpm"),
            tpm=raw.get("tpm"),
            budget=_caps(raw.get("budget")),
            context_window=raw.get("context_window"),
        )
