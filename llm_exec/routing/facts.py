"""What a decision asks the provider classes, answered from the route cache when it can be.

Importing a provider module to read `default_model` costs more than the rest of a decision (the
llama one loads asyncio, ~20 ms), and the circuit check needs each agent's breaker key, which the
provider class derives from the environment (base-URL variables, llama's API style). So the
answers are kept in the route cache (_cache.py, invalidated by any change to llm_exec's code):

- class attributes (`default_model`, `pricing_provider`, `executable`), per executor;
- per environment (a SHA-256 of every variable but the shell's `$_`, `$PWD`, `$OLDPWD` and
  `$SHLVL`, so any other change to the environment is a miss):
  the (provider name, breaker key) of each agent's calls, and the breaker settings that
  GuardConfig.from_env reads for a provider.

Only successful answers are kept: a provider class or GuardConfig that raises is asked again
every time, and raises again, as it would without the cache. Values from the environment are
never stored, only what the code derived from them (a breaker key is itself a SHA-256).
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any

from ..config import environ
from ..errors import ConfigurationError
from . import _cache
from .registry import Agent

if TYPE_CHECKING:
    from ..providers.base import BaseLlm

FACTS_FILE = "providers.json"
# Environments kept (a shell and a CI job differ), and entries per environment (one per executor,
# model, task defaults and endpoint in use).
MAX_ENVIRONMENTS = 8
MAX_ENTRIES = 256


@cache
def provider_class(executor: str) -> type[BaseLlm]:
    from ..providers.registry import get_provider  # deferred: only on a cache miss or a failure

    return get_provider(executor)


# Shell bookkeeping that changes with every `cd` or command and that no llm_exec code reads: left
# out of the digest, or each directory a user works in would derive the answers again.
SHELL_ONLY_VARIABLES = frozenset({"_", "PWD", "OLDPWD", "SHLVL"})


def environment_digest() -> str:
    """SHA-256 over every environment variable (names and values, sorted) but SHELL_ONLY_VARIABLES."""
    try:  # CPython's built-in SHA-256: hashlib would load OpenSSL first (~2.5 ms)
        from _sha256 import sha256  # type: ignore[import-not-found]  # 3.11
    except ImportError:
        try:
            from _sha2 import sha256  # type: ignore[import-not-found]  # 3.12+
        except ImportError:
            from hashlib import sha256
    digest = sha256()
    for name, value in sorted(environ().items()):
        if name in SHELL_ONLY_VARIABLES:
            continue
        digest.update(f"{name}={value}\0".encode("utf-8", "surrogateescape"))
    return str(digest.hexdigest())


class ProviderFacts:
    """The provider classes' answers a decision needs, from the route cache when it holds them."""

    def __init__(self) -> None:
        self._data: dict[str, Any] | None = None
        self._slot: dict[str, dict[str, Any]] | None = None  # this environment's entries

    def _load(self) -> dict[str, Any]:
        if self._data is None:
            data = _cache.read(FACTS_FILE) or {}
            static, environments = data.get("static"), data.get("environments")
            self._data = {"static": static if isinstance(static, dict) else {},
                          "environments": environments if isinstance(environments, dict) else {}}
        return self._data

    def _save(self) -> None:
        if self._data is not None:
            _cache.write(FACTS_FILE, self._data)

    # -- class attributes ----------------------------------------------------------------------

    def _static(self, executor: str) -> dict[str, Any]:
        data = self._load()
        facts = data["static"].get(executor)
        if not (isinstance(facts, dict) and isinstance(facts.get("default_model"), str)
                and isinstance(facts.get("pricing_provider"), str | None)
                and isinstance(facts.get("executable"), str | None)):
            cls = provider_class(executor)
            facts = {"default_model": cls.default_model, "pricing_provider": cls.pricing_provider,
                     "executable": cls.executable}
            data["static"][executor] = facts
            self._save()
        return facts

    def default_model(self, executor: str) -> str:
        return str(self._static(executor)["default_model"])

    def pricing_provider(self, executor: str) -> str | None:
        return self._static(executor)["pricing_provider"]

    def executable(self, executor: str) -> str | None:
        return self._static(executor)["executable"]

    # -- answers read from the environment -------------------------------------------------------

    def _environment(self) -> dict[str, dict[str, Any]]:
        if self._slot is None:
            environments = self._load()["environments"]
            env = environment_digest()
            slot = environments.get(env)
            if not (isinstance(slot, dict) and isinstance(slot.get("identities"), dict)
                    and isinstance(slot.get("breakers"), dict)):
                while len(environments) >= MAX_ENVIRONMENTS:
                    del environments[next(iter(environments))]  # the oldest
                slot = environments[env] = {"identities": {}, "breakers": {}}
            self._slot = slot
        return self._slot

    def _remember(self, table: str, key: str, value: Any) -> None:
        entries = self._environment()[table]
        if len(entries) >= MAX_ENTRIES:
            entries.clear()
        entries[key] = value
        self._save()

    def breaker_identity(self, agent: Agent, model: str, api_endpoint: str | None) -> tuple[str, str] | None:
        """(provider name, breaker key) of the calls the agent's executor would make, or None when
        its endpoint is invalid (the executor reports that itself). An invalid API style raises."""
        identities = self._environment()["identities"]
        try:
            key: str | None = json.dumps([agent.executor, model, agent.task_defaults, api_endpoint])
        except (TypeError, ValueError):
            key = None  # task defaults that JSON cannot hold: derived every time
        if key is not None and key in identities:
            cached = identities[key]
            if cached is None:
                return None
            if isinstance(cached, list) and len(cached) == 2 and all(isinstance(part, str) for part in cached):
                return cached[0], cached[1]
        identity = _resolve_identity(agent, model, api_endpoint)
        if key is not None:
            self._remember("identities", key, None if identity is None else list(identity))
        return identity

    def breaker_settings(self, provider: str) -> dict[str, Any]:
        """GuardConfig.from_env(provider).breaker's fields: the breaker thresholds the provider's
        executor applies. Raises its ConfigurationError for an invalid LLM_EXEC_* variable."""
        breakers = self._environment()["breakers"]
        cached = breakers.get(provider)
        if isinstance(cached, dict):
            return cached
        from dataclasses import asdict

        from ..state.guard import GuardConfig

        settings = asdict(GuardConfig.from_env(provider).breaker)
        self._remember("breakers", provider, settings)
        return settings


def _resolve_identity(agent: Agent, model: str, api_endpoint: str | None) -> tuple[str, str] | None:
    from ..state.guard import CallIdentity

    cls = provider_class(agent.executor).for_options(agent.task_defaults)
    try:
        base_url = cls.resolve_base_url(api_endpoint) or ""
    except ConfigurationError:
        return None
    return cls.name, CallIdentity(cls.name, model, base_url, key_fingerprint="").breaker_key
