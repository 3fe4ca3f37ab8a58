"""llm-route's start-up shortcuts give the answers the slow paths give: the compiled registry check
never accepts what jsonschema rejects, libyaml's parser builds what PyYAML's does, and the route
cache (parsed registries, provider facts) follows every change to what it was derived from."""

from __future__ import annotations

import copy
import datetime
import json
import os
import textwrap
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from llm_exec.errors import ConfigurationError
from llm_exec.providers.registry import BUILTIN, get_provider
from llm_exec.routing import _cache
from llm_exec.routing.facts import ProviderFacts, _resolve_identity, environment_digest
from llm_exec.routing.registry import _fast_check, load_registry, parse_registry
from llm_exec.state.guard import GuardConfig
from llm_exec.task import load_schema
from llm_exec.yaml_lines import compose, loader_class

from .test_registry import GOOD

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# -- the compiled registry check -------------------------------------------------------------------

VALID: dict[str, Any] = {
    "version": 1,
    "name": "team",
    "default_agent": "a",
    "budget": {"daily_usd": 5},
    "complexity_tiers": {"simple": ["*-mini"]},
    "agents": [
        {"name": "a", "type": "meta-llama", "capabilities": ["code"], "price_per_mtok": {"input": 0, "output": 0},
         "task_defaults": {"api_style": "openai"}, "metadata": {"team": "x"}, "rpm": 10},
        {"name": "b", "type": "openai-gpt", "model": "gpt-5.4-mini", "max_tokens": 100, "temperature": 0.5,
         "api_key_env": "MY_KEY", "enabled": False, "budget": {"monthly_usd": None}},
    ],
}
# Values of every JSON type and the YAML-only ones, including near misses of the schema's constraints.
ODD_VALUES = [None, True, False, 0, 1, 1.0, 2, 2.5, -1, 1e300, float("nan"), "", "x", "code", "no", "1", "a b",
              "a\n", [], ["code"], ["code", "code"], ["cooking"], [1], {}, {"input": 1}, {"input": 1, "output": 2},
              {"daily_usd": -1}, {"top_p": 1}, {"prompt": "x"}, {1: "x"}, datetime.date(2024, 1, 1), b"x", {"x"}]
KEYS = ["version", "name", "budget", "default_agent", "complexity_tiers", "agents", "bogus"]
AGENT_KEYS = ["name", "type", "interface", "model", "capabilities", "enabled", "api_endpoint", "api_key_env",
              "max_tokens", "temperature", "price_per_mtok", "task_defaults", "rpm", "tpm", "budget", "metadata",
              "bogus"]


def jsonschema_accepts(document: Any) -> bool:
    return not any(Draft202012Validator(load_schema("registry")).iter_errors(document))


def test_the_compiled_check_accepts_valid_registries() -> None:
    check = _fast_check()
    assert check is not None, "the registry schema uses a keyword the compiled check lacks: every run pays jsonschema"
    assert check(VALID) and jsonschema_accepts(VALID)
    for path in EXAMPLES.glob("registry*.yaml"):
        document = yaml.load(path.read_bytes(), Loader=loader_class())
        assert check(document), path


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_the_compiled_check_never_accepts_what_jsonschema_rejects(data: st.DataObject) -> None:
    document = copy.deepcopy(VALID)
    for _ in range(data.draw(st.integers(1, 3))):
        value = copy.deepcopy(data.draw(st.sampled_from(ODD_VALUES)))
        agent = data.draw(st.sampled_from([*document.get("agents", ()), None])) \
            if isinstance(document.get("agents"), list) else None
        if isinstance(agent, dict):
            agent[data.draw(st.sampled_from(AGENT_KEYS))] = value
        else:
            document[data.draw(st.sampled_from(KEYS))] = value
    if _fast_check()(document):
        assert jsonschema_accepts(document), document


# -- libyaml and PyYAML ------------------------------------------------------------------------------

ALIASES = """\
version: 1
agents:
  - &first {name: a, type: openai-gpt, capabilities: [code], max_tokens: 100}
  - {<<: *first, name: b, model: on}
  - name: "no"
    type: custom
    metadata: {since: 2024-01-01, flag: yes, n: 0x10, f: .inf}
"""


@pytest.mark.parametrize("text", [GOOD, ALIASES, *(p.read_text() for p in sorted(EXAMPLES.glob("registry*.yaml")))])
def test_libyaml_builds_what_pyyaml_builds(text: str) -> None:
    fast = loader_class(fast=True)
    if fast is None:
        pytest.skip("PyYAML without libyaml")
    data = text.encode()
    assert compose(fast, data, "r.yaml", "registry", "x") == compose(loader_class(), data, "r.yaml", "registry", "x")


# -- the parsed-registry cache -------------------------------------------------------------------------

REGISTRY = textwrap.dedent("""\
    version: 1
    agents:
      - {name: a, type: meta-llama, model: aaa, capabilities: [code]}
      - {name: b, type: openai-gpt}
""")


def cache_files(tmp_path: Path, pattern: str) -> list[Path]:
    return sorted((tmp_path / "cache" / "llm-exec").glob(pattern))


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def test_a_registry_is_rebuilt_from_the_cache_until_its_text_changes(cache_home: Path) -> None:
    path = cache_home / "registry.yaml"
    path.write_text(REGISTRY)
    first = load_registry(str(path))
    assert first == parse_registry(REGISTRY, str(path))
    [entry_path] = cache_files(cache_home, "registry-*.json")
    assert oct(entry_path.stat().st_mode & 0o777) == "0o600"

    # A second run builds the Registry from the cache entry (marked here to tell it apart).
    entry = json.loads(entry_path.read_text())
    entry["document"]["agents"][0]["model"] = "from-the-cache"
    entry_path.write_text(json.dumps(entry))
    assert load_registry(str(path)).agents[0].model == "from-the-cache"

    # Same size, same mtime, other text: the text decides, so the file is parsed again.
    stat = path.stat()
    path.write_text(REGISTRY.replace("model: aaa", "model: bbb"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    assert load_registry(str(path)).agents[0].model == "bbb"
    assert load_registry(str(path)).agents[0].model == "bbb"  # and cached again

    # An invalid registry is never served from, nor stored in, the cache.
    path.write_text(REGISTRY.replace("meta-llama", "bard"))
    for _ in range(2):
        with pytest.raises(ConfigurationError, match=r"line 3: agents\[0\]\.type"):
            load_registry(str(path))


def test_entries_of_other_code_are_not_used(cache_home: Path) -> None:
    path = cache_home / "registry.yaml"
    path.write_text(REGISTRY)
    load_registry(str(path))
    [entry_path] = cache_files(cache_home, "registry-*.json")
    entry = json.loads(entry_path.read_text())
    entry["document"]["agents"][0]["model"] = "from-the-cache"
    module = next(item for item in entry["code"] if item[0].endswith("registry.py"))
    module[2] += 1  # as if llm_exec/routing/registry.py had been edited since
    entry_path.write_text(json.dumps(entry))
    assert load_registry(str(path)).agents[0].model == "aaa"


def test_what_json_cannot_hold_is_not_cached(cache_home: Path) -> None:
    path = cache_home / "registry.yaml"
    path.write_text(REGISTRY.replace("type: openai-gpt}", "type: openai-gpt, metadata: {since: 2024-01-01, 1: one}}"))
    for _ in range(2):
        metadata = load_registry(str(path)).agents[1].metadata
        assert metadata == {"since": datetime.date(2024, 1, 1), 1: "one"}
    assert cache_files(cache_home, "registry-*.json") == []


def test_an_unwritable_cache_is_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))  # cannot hold a directory
    path = tmp_path / "registry.yaml"
    path.write_text(REGISTRY)
    assert load_registry(str(path)) == load_registry(str(path)) == parse_registry(REGISTRY, str(path))


# -- provider facts --------------------------------------------------------------------------------------


def test_provider_attributes_match_the_classes(cache_home: Path) -> None:
    for _ in range(2):  # derived, then cached
        facts = ProviderFacts()
        for executor in BUILTIN:
            cls = get_provider(executor)
            assert facts.default_model(executor) == cls.default_model
            assert facts.pricing_provider(executor) == cls.pricing_provider
            assert facts.executable(executor) == cls.executable
    assert cache_files(cache_home, "providers.json")


def test_breaker_identities_follow_the_environment(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agent = parse_registry("version: 1\nagents:\n  - {name: l, type: meta-llama}\n").agents[0]
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:1111")
    first = ProviderFacts().breaker_identity(agent, "llama3.2", None)
    assert first is not None and first == _resolve_identity(agent, "llama3.2", None)
    assert ProviderFacts().breaker_identity(agent, "llama3.2", None) == first  # from the cache
    cached = json.loads(cache_files(cache_home, "providers.json")[0].read_text())
    assert "127.0.0.1:1111" not in json.dumps(cached)  # derived keys only, never the environment's values

    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:2222")
    second = ProviderFacts().breaker_identity(agent, "llama3.2", None)
    assert second == _resolve_identity(agent, "llama3.2", None) and second != first
    monkeypatch.setenv("LLM_EXEC_LLAMA_API_STYLE", "openai")
    third = ProviderFacts().breaker_identity(agent, "llama3.2", None)
    assert third is not None and third[0] == "openai-compatible"

    # Answers that raise are never cached: they raise every time.
    monkeypatch.setenv("LLM_EXEC_LLAMA_API_STYLE", "grpc")
    for _ in range(2):
        with pytest.raises(ConfigurationError, match="LLM_EXEC_LLAMA_API_STYLE"):
            ProviderFacts().breaker_identity(agent, "llama3.2", None)
    # An invalid endpoint is cached as "no identity", as the provider class says.
    monkeypatch.delenv("LLM_EXEC_LLAMA_API_STYLE")
    monkeypatch.setenv("OLLAMA_HOST", "ftp://nowhere")
    assert ProviderFacts().breaker_identity(agent, "llama3.2", None) is None
    assert ProviderFacts().breaker_identity(agent, "llama3.2", None) is None


def test_the_environment_digest_ignores_only_shell_bookkeeping(monkeypatch: pytest.MonkeyPatch) -> None:
    before = environment_digest()
    for name in ("_", "PWD", "OLDPWD", "SHLVL"):
        monkeypatch.setenv(name, "/somewhere/else")
    assert environment_digest() == before
    monkeypatch.setenv("ANY_OTHER_VARIABLE", "x")
    assert environment_digest() != before


def test_breaker_settings_follow_the_environment(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ProviderFacts().breaker_settings("ollama") == asdict(GuardConfig.from_env("ollama").breaker)
    monkeypatch.setenv("LLM_EXEC_BREAKER_THRESHOLD", "2")
    assert ProviderFacts().breaker_settings("ollama")["threshold"] == 2
    assert ProviderFacts().breaker_settings("ollama")["threshold"] == 2
    monkeypatch.setenv("LLM_EXEC_BREAKER_THRESHOLD", "many")
    for _ in range(2):
        with pytest.raises(ConfigurationError, match="LLM_EXEC_BREAKER_THRESHOLD"):
            ProviderFacts().breaker_settings("ollama")


def test_a_damaged_cache_file_is_ignored(cache_home: Path) -> None:
    directory = cache_home / "cache" / "llm-exec"
    directory.mkdir(parents=True)
    (directory / "providers.json").write_text('{"format": 1, "static": ')
    assert _cache.read("providers.json") is None
    assert ProviderFacts().default_model("gpt") == get_provider("gpt").default_model
