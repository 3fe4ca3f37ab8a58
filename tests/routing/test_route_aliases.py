"""llm-route with model aliases and deprecated models (issue 13): a registry's `aliases:` send a
task to the aliased model on that provider's agents; a deprecated model ranks after agents of equal
rank, says so in --explain, and warns in the result. Real subprocesses against the emulator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from llm_exec.emulator import Emulator

from .conftest import run_route

SPEC = {"task_id": "al-1", "prompt": "Write unit tests for the parser", "complexity": "simple", "max_retries": 0}

# Two agents at the same stated price: only deprecation can order them (then the file order would).
EQUAL = """
version: 1
aliases:
  fast: gpt:gpt-5.4-mini
  local: llama:llama3.2
deprecated:
  gpt-4o: {end_of_life: 2999-01-01, replacement: gpt-5.4-mini}
agents:
  - {name: old, type: openai-gpt, model: gpt-4o, capabilities: [code], price_per_mtok: {input: 1, output: 1}}
  - {name: new, type: openai-gpt, model: gpt-5.4-mini, capabilities: [code], price_per_mtok: {input: 1, output: 1}}
  - {name: ollama, type: meta-llama, capabilities: [code], price_per_mtok: {input: 2, output: 2}}
"""


def test_a_deprecated_model_ranks_after_its_equal_and_explain_says_why(
    write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator
) -> None:
    run = run_route(SPEC, registry=write_registry(EQUAL), tmp_path=tmp_path, url=emulator.url, args=("--explain",),
                    check_result=False)
    explained = run.lines[-1]
    assert explained["ranking"] == ["new", "old", "ollama"]
    old = next(agent for agent in explained["agents"] if agent["name"] == "old")
    assert old["deprecated"]["end_of_life"] == "2999-01-01" and old["deprecated"]["replacement"] == "gpt-5.4-mini"
    assert explained["deprecated_models"] == [
        "old: model gpt-4o is deprecated (end of life 2999-01-01); use gpt-5.4-mini instead: "
        "ranked after the agents of equal rank"]


def test_a_pinned_deprecated_agent_still_runs_and_warns(
    write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator
) -> None:
    run = run_route({**SPEC, "agent": "old"}, registry=write_registry(EQUAL), tmp_path=tmp_path, url=emulator.url)
    assert run.code == 0, run.stderr
    [warning] = run.result["warnings"]
    assert warning["model"] == "gpt-4o" and warning["source"].endswith("registry.yaml")
    assert run.stderr.count("warning: model gpt-4o is deprecated") == 1


def test_a_registry_alias_routes_to_its_provider_and_model(
    write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator
) -> None:
    run = run_route({**SPEC, "model": "local"}, registry=write_registry(EQUAL), tmp_path=tmp_path, url=emulator.url)
    assert run.code == 0, run.stderr
    assert run.result["agent"] == "ollama" and run.result["model"] == "llama3.2"
    assert run.result["model_alias"] == "local"
    assert [r["path"] for r in emulator.requests()] == ["/api/chat"]
    assert emulator.requests()[0]["body"]["model"] == "llama3.2"


def test_explain_names_the_alias_as_the_reason_others_do_not_qualify(
    write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator
) -> None:
    run = run_route({**SPEC, "model": "local"}, registry=write_registry(EQUAL), tmp_path=tmp_path, url=emulator.url,
                    args=("--explain",), check_result=False)
    explained = run.lines[-1]
    assert explained["ranking"] == ["ollama"]
    rejected = {agent["name"]: agent["reasons"] for agent in explained["agents"] if not agent["kept"]}
    assert rejected == {"old": ["model alias 'local' is for provider llama"],
                        "new": ["model alias 'local' is for provider llama"]}
