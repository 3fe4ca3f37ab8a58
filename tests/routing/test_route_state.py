"""llm-route with shared state: open circuits are skipped (and explained), registry budgets and
rate limits reach the executors, which enforce them across processes; llm-route fails over."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from llm_exec.emulator import Emulator

from .conftest import run_route

SPEC = {"task_id": "s-1", "prompt": "Write unit tests for the parser", "complexity": "simple", "max_retries": 0}

# Two local agents on the same emulator, distinguished by their endpoints' paths.
TWO_LOCAL = """
version: 1
name: team
agents:
  - name: first
    type: meta-llama
    model: llama3.2
    capabilities: [code]
    max_tokens: 32
    price_per_mtok: {{input: 0, output: 0}}
    {first_extra}
  - name: second
    type: custom
    model: tiny
    capabilities: [code]
    max_tokens: 32
    price_per_mtok: {{input: 1, output: 1}}
"""


def test_open_circuit_is_skipped_and_explained(write_registry: Callable[..., Path], tmp_path: Path,
                                              emulator: Emulator) -> None:
    registry = write_registry(TWO_LOCAL.format(first_extra=""))
    env = {"LLM_EXEC_BREAKER_THRESHOLD": "1"}
    emulator.script([{"status": 500}])  # the first agent fails once: its circuit opens
    first = run_route(SPEC, registry=registry, tmp_path=tmp_path, url=emulator.url, env=env)
    assert first.code == 0 and first.result["agent"] == "second"
    assert [t["error_type"] for t in first.result["route"]["tried"]] == ["server_error", None]

    explain = run_route(SPEC, registry=registry, tmp_path=tmp_path, url=emulator.url, env=env, args=("--explain",),
                        check_result=False)
    decision = json.loads(explain.stdout)
    agents = {a["name"]: a for a in decision["agents"]}
    assert not agents["first"]["kept"]
    assert any("circuit open" in reason for reason in agents["first"]["reasons"])
    assert decision["ranking"] == ["second"]

    before = len(emulator.requests())
    second = run_route(SPEC, registry=registry, tmp_path=tmp_path, url=emulator.url, env=env)
    assert second.code == 0 and second.result["agent"] == "second"
    assert second.result["route"]["tried"] == [{"agent": "second", "exit_code": 0, "error_type": None}]
    assert [r["path"] for r in emulator.requests()[before:]] == ["/custom"]  # the open agent was not called


BUDGETED = """
version: 1
name: {name}
budget: {{daily_usd: {registry_cap}}}
agents:
  - name: pricey
    type: openai-gpt
    model: gpt-4o-mini
    capabilities: [code]
    max_tokens: 1000
    budget: {{daily_usd: {agent_cap}}}
  - name: local
    type: meta-llama
    model: llama3.2
    capabilities: [code]
    max_tokens: 32
    {local_extra}
"""


def test_agent_over_budget_fails_over(write_registry: Callable[..., Path], tmp_path: Path,
                                      emulator: Emulator) -> None:
    # Cheapest first: the local model has no price, so it ranks after the priced one.
    registry = write_registry(BUDGETED.format(name="b1", registry_cap=10, agent_cap="0.0000001", local_extra=""))
    run = run_route(SPEC, registry=registry, tmp_path=tmp_path, url=emulator.url)
    assert run.code == 0, run.result
    assert run.result["agent"] == "local"
    assert run.result["route"]["tried"][0] == {"agent": "pricey", "exit_code": 2, "error_type": "budget_exceeded"}
    assert "/v1/chat/completions" not in [r["path"] for r in emulator.requests()]  # refused before the call


def test_no_agent_within_budget_is_budget_exceeded(write_registry: Callable[..., Path], tmp_path: Path,
                                                   emulator: Emulator) -> None:
    # Budgets count what genai-prices knows; a second priced agent (not the local one) must be refused too.
    text = BUDGETED.format(name="b2", registry_cap="0.0000001", agent_cap=10, local_extra="")
    registry = write_registry(text.replace("type: meta-llama\n    model: llama3.2",
                                           "type: openai-gpt\n    model: gpt-4.1-mini"))
    run = run_route(SPEC, registry=registry, tmp_path=tmp_path, url=emulator.url)
    assert run.code == 2
    assert run.result["error"]["type"] == "budget_exceeded"
    assert [t["error_type"] for t in run.result["route"]["tried"]] == ["budget_exceeded", "budget_exceeded"]
    assert emulator.requests() == []


def test_agent_rate_limit_reaches_its_executor(write_registry: Callable[..., Path], tmp_path: Path,
                                               emulator: Emulator) -> None:
    registry = write_registry(TWO_LOCAL.format(first_extra="rpm: 1"))
    spec = {**SPEC, "timeout_seconds": 5}
    first = run_route(spec, registry=registry, tmp_path=tmp_path, url=emulator.url)
    second = run_route(spec, registry=registry, tmp_path=tmp_path, url=emulator.url)
    assert first.result["agent"] == "first"
    assert second.code == 0 and second.result["agent"] == "second"
    assert second.result["route"]["tried"][0]["error_type"] == "rate_limited_locally"
