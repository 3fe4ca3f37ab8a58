"""Provider name -> BaseLlm class. Built-ins and plugins register the same way and resolve the same way.

The built-ins are a table of the same shape as the `llm_exec.providers` entry-point group
(`name = "package.module:Class"`), which third-party packages use to add providers. Everything the
rest of llm_exec needs to know about a provider (agent types, key and base-URL variables, its task
option fields, pricing id, dedicated executable, emulator path, GenAI names) is declared on its
class (providers/base.py) and read here; nothing outside llm_exec/providers/ names a provider.

Modules are imported only when asked for: a provider module imports no SDK at import time, but a
one-shot executor still never imports the four it does not use, and entry points (installed
package metadata: ~10 ms to scan) are read only when a name is not a built-in one. A plugin that
cannot be loaded is a configuration error (exit 2) naming its package, and never hides the others.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .base import BaseLlm

BUILTIN: dict[str, str] = {
    "claude": "llm_exec.providers.anthropic:AnthropicLlm",
    "gpt": "llm_exec.providers.openai:OpenAiLlm",
    "gemini": "llm_exec.providers.gemini:GeminiLlm",
    "custom": "llm_exec.providers.custom:CustomLlm",
    "llama": "llm_exec.providers.llama:LlamaLlm",
}

ENTRY_POINT_GROUP = "llm_exec.providers"
PACKAGE = "llm-exec"


@dataclass(frozen=True)
class ProviderEntry:
    """One registered provider: a built-in or an installed plugin's entry point."""

    name: str  # what --provider, LLM_EXEC_PROVIDER, a task's `provider` and a registry `type:` say
    target: str  # "package.module:Class"
    package: str  # the distribution that registers it
    version: str | None
    builtin: bool

    def load(self) -> type[BaseLlm]:
        """The provider class; a plugin that fails to import or is not a provider is exit 2."""
        if self.builtin:
            return _import(self.target)
        try:
            loaded = _import(self.target)
        except Exception as exc:  # a broken plugin: whatever its import raises
            raise self._broken(f"cannot be imported: {type(exc).__name__}: {exc}") from exc
        problem = provider_class_problem(loaded)
        if problem:
            raise self._broken(problem)
        return loaded

    def _broken(self, problem: str) -> ConfigurationError:
        return ConfigurationError(
            f"provider plugin {self.name!r} from package {self.package} ({self.target}) {problem}",
            field="provider", error_type="plugin_error",
        )


def provider_class_problem(candidate: Any) -> str | None:
    """Why `candidate` cannot serve as a provider class, or None when it can."""
    from .base import BaseLlm

    if not (inspect.isclass(candidate) and issubclass(candidate, BaseLlm)):
        return f"is not a llm_exec BaseLlm subclass (got {candidate!r})"
    if inspect.isabstract(candidate):
        missing = ", ".join(sorted(getattr(candidate, "__abstractmethods__", ())))
        return f"does not implement {missing}"
    for attribute in ("name", "default_model"):
        if not isinstance(getattr(candidate, attribute, None), str):
            return f"declares no {attribute} (a str class attribute)"
    return None


def _import(target: str) -> type[BaseLlm]:
    module_name, _, attr = target.partition(":")
    return getattr(import_module(module_name), attr)


# The umbrella command that runs any provider, for those without an executable of their own (plugins).
UMBRELLA = "llm-exec"


def command_line(name: str, executable: str | None) -> list[str]:
    """How to run the provider registered as `name`: its own console script when its class declares
    one (`executable`), else `llm-exec run --provider NAME`."""
    return [executable] if executable else [UMBRELLA, "run", "--provider", name]


def builtin_entries() -> list[ProviderEntry]:
    from .. import __version__

    return [ProviderEntry(name, target, PACKAGE, __version__, True) for name, target in BUILTIN.items()]


@cache
def plugin_entries() -> tuple[ProviderEntry, ...]:
    """Installed plugins, in name order; one that reuses a built-in name is ignored (a built-in
    executor must mean the same thing on every machine)."""
    from importlib.metadata import entry_points  # scanning installed metadata costs ~10 ms

    found: dict[str, ProviderEntry] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in BUILTIN or entry.name in found:
            continue
        dist = getattr(entry, "dist", None)
        package = dist.metadata["Name"] if dist is not None else entry.value.partition(":")[0]
        found[entry.name] = ProviderEntry(entry.name, entry.value, package, dist.version if dist else None, False)
    return tuple(found[name] for name in sorted(found))


def entries() -> list[ProviderEntry]:
    """Every registered provider: the built-ins first, then the plugins."""
    return [*builtin_entries(), *plugin_entries()]


def find_entry(name: str) -> ProviderEntry:
    """The entry registered under `name`, or under a name its class declares (`provider_aliases`)."""
    if name in BUILTIN:
        return ProviderEntry(name, BUILTIN[name], PACKAGE, None, True)
    for entry in builtin_entries():
        if name in _import(entry.target).provider_aliases:
            return entry
    plugins = plugin_entries()
    for entry in plugins:
        if entry.name == name:
            return entry
    for entry in plugins:  # a plugin's own aliases: its class must be loaded to read them
        try:
            if name in entry.load().provider_aliases:
                return entry
        except ConfigurationError:
            continue  # a broken plugin claims no name; `llm-exec providers` reports it
    raise ConfigurationError(f"unknown provider {name!r}{_suggestion(name, available())}; known: "
                             f"{', '.join(available())} (`llm-exec providers` lists them)",
                             field="provider", error_type="unknown_provider")


def get_provider(name: str) -> type[BaseLlm]:
    """The provider class registered under `name` (an executor name such as "claude", a provider
    id such as "anthropic", or a plugin's entry-point name)."""
    return find_entry(name).load()


def provider_for_agent_type(agent_type: str) -> str:
    """The registered name serving a registry `type:`: a name itself, or an `agent_types` value one
    declares. Raises ConfigurationError (exit 2) for a type no installed provider serves."""
    if agent_type in BUILTIN:
        return agent_type
    for entry in builtin_entries():
        if agent_type in _import(entry.target).agent_types:
            return entry.name
    plugins = plugin_entries()
    for entry in plugins:
        if entry.name == agent_type:
            return entry.name
    for entry in plugins:
        try:
            cls = entry.load()
        except ConfigurationError:
            continue  # a broken plugin cannot claim a type; the one that names it is reported below
        if agent_type in cls.agent_types:
            return entry.name
    raise ConfigurationError(f"unknown agent type {agent_type!r}{_suggestion(agent_type, agent_types())}; "
                             f"known: {', '.join(agent_types())}", field="type", error_type="unknown_provider")


def agent_types() -> list[str]:
    """Every registry `type:` value the installed providers serve (loadable plugins only)."""
    names: list[str] = []
    for entry in entries():
        try:
            cls = entry.load()
        except ConfigurationError:
            continue
        names += [entry.name, *cls.agent_types]
    return sorted(set(names))


def available() -> list[str]:
    return [entry.name for entry in entries()]


def _suggestion(name: str, known: list[str]) -> str:
    from ..task import did_you_mean

    return did_you_mean(name, known)
