"""Selection rules, through `llm-route --explain` (a real subprocess; nothing is called), plus the
pure rules in-process where a subprocess would add nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llm_exec.emulator import Emulator
from llm_exec.routing.registry import Agent, parse_registry
from llm_exec.routing.rules import CostEstimate, classify, decide
from llm_exec.task import TaskSpec, estimate_prompt_tokens

from .conftest import run_route

REGISTRY = """
version: 1
default_agent: fallback-llama
complexity_tiers:
  simple: ["*-mini", "llama*"]
agents:
  - name: claude
    type: anthropic-claude
    model: claude-sonnet-4-6
    capabilities: [code, design, research, analysis]
  - name: gpt
    type: openai-gpt
    model: gpt-5.4-mini
    capabilities: [code, testing]
  - name: gemini
    type: google-gemini
    model: gemini-2.5-flash
    capabilities: [research, analysis]
  - name: off
    type: openai-gpt
    capabilities: [code, design, research, analysis, testing]
    enabled: false
  - name: mystery
    type: openai-gpt
    model: gpt-unknown-2099
    capabilities: [code]
  - name: fallback-llama
    type: meta-llama
    model: llama3.2
    capabilities: [code, documentation]
"""

BASE = {"task_id": "sel", "prompt": "Write a function that adds two numbers", "max_tokens": 1000}


@pytest.fixture
def explain(write_registry: Callable[..., Path], tmp_path: Path) -> Callable[..., dict[str, Any]]:
    registry = write_registry(REGISTRY)

    def run(expect_exit: int = 0, registry_text: str | None = None, **fields: Any) -> dict[str, Any]:
        path = write_registry(registry_text, "other.yaml") if registry_text else registry
        spec = {k: v for k, v in {**BASE, **fields}.items() if v is not None}  # None removes a BASE field
        result = run_route(spec, registry=path, tmp_path=tmp_path, args=("--explain",),
                           check_result=False)
        assert result.code == expect_exit, result.stderr
        assert len(result.lines) == 1
        return result.result

    return run


def by_name(decision: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {agent["name"]: agent for agent in decision["agents"]}


def test_capability_filtering_and_disabled_agents(explain: Callable[..., dict[str, Any]]) -> None:
    decision = explain(required_capabilities=["design"], complexity="medium")
    agents = by_name(decision)
    assert decision["ranking"] == ["claude"] and decision["chosen"] == "claude"
    assert agents["gpt"]["reasons"] == ["missing capabilities: design"]
    assert agents["off"]["reasons"] == ["disabled"]  # it has the capability, but is switched off
    assert agents["gemini"]["kept"] is False and agents["claude"]["kept"] is True
    assert agents["claude"]["reasons"] == []


def test_cheapest_first_with_unknown_costs_last(explain: Callable[..., dict[str, Any]]) -> None:
    decision = explain(required_capabilities=["code"], complexity="medium")
    assert decision["rule"] == "cheapest first"
    # gpt-5.4-mini ($0.75/$4.5) < claude-sonnet-4-6 ($3/$15); unknown costs follow in registry order.
    assert decision["ranking"] == ["gpt", "claude", "mystery", "fallback-llama"]
    assert decision["failover"] == decision["ranking"]
    agents = by_name(decision)
    tokens = decision["estimated_prompt_tokens"]
    assert agents["gpt"]["estimated_output_tokens"] == 1000
    assert agents["gpt"]["estimated_cost_usd"] == pytest.approx((tokens * 0.75 + 1000 * 4.5) / 1e6)
    assert agents["gpt"]["price_per_mtok"] == {"input": 0.75, "output": 4.5, "source": "genai-prices"}
    assert agents["mystery"]["estimated_cost_usd"] is None
    assert "genai-prices does not know" in agents["mystery"]["cost_note"]
    assert agents["fallback-llama"]["price_per_mtok"] is None


def test_versatility_first_for_complex_tasks(explain: Callable[..., dict[str, Any]]) -> None:
    decision = explain(required_capabilities=["code"], complexity="complex")
    assert decision["rule"] == "versatility first"
    # claude has 4 capabilities; gpt and fallback-llama 2 each (registry order breaks the tie); mystery 1.
    assert decision["ranking"] == ["claude", "gpt", "fallback-llama", "mystery"]


def test_preferred_types_rank_first_in_the_order_given(explain: Callable[..., dict[str, Any]]) -> None:
    decision = explain(preferred_types=["meta-llama", "google-gemini"], complexity="medium")
    assert decision["ranking"] == ["fallback-llama", "gemini", "gpt", "claude", "mystery"]


def test_pinned_agent_is_that_agent_only(explain: Callable[..., dict[str, Any]]) -> None:
    decision = explain(agent="claude", complexity="simple")
    # The simple tier would exclude claude-sonnet, but tiers do not apply to a pinned agent.
    assert decision["pinned"] == "claude"
    assert decision["ranking"] == ["claude"] and decision["failover"] == ["claude"]
    assert by_name(decision)["gpt"]["reasons"] == ["the task pins agent 'claude'"]


@pytest.mark.parametrize(
    ("fields", "error_type", "fragment"),
    [
        ({"agent": "nobody"}, "unknown_agent", "not in the registry"),
        ({"agent": "off"}, "no_agent", "disabled"),
        ({"agent": "gpt", "required_capabilities": ["design"]}, "no_agent", "missing capabilities: design"),
    ],
)
def test_pinned_agent_that_cannot_run_is_exit_2(
    explain: Callable[..., dict[str, Any]], fields: dict[str, Any], error_type: str, fragment: str
) -> None:
    decision = explain(expect_exit=2, **fields)
    assert decision["chosen"] is None and decision["ranking"] == []
    assert decision["error"]["type"] == error_type and fragment in decision["error"]["message"]


def test_complexity_tier_narrows_candidates(explain: Callable[..., dict[str, Any]]) -> None:
    decision = explain(complexity="simple")
    agents = by_name(decision)
    assert "not in the simple tier" in agents["claude"]["reasons"][0]
    assert "not in the simple tier" in agents["gemini"]["reasons"][0]
    assert "not in the simple tier" in agents["mystery"]["reasons"][0]
    assert decision["tier"] == ["*-mini", "llama*"]
    assert decision["ranking"] == ["gpt", "fallback-llama"]
    # A class the registry does not configure allows every model.
    assert explain(complexity="medium")["tier"] is None


def test_auto_complexity_from_the_task(explain: Callable[..., dict[str, Any]]) -> None:
    simple = explain(prompt="Translate 'hello' to French")
    assert simple["complexity"]["requested"] == "auto" and simple["complexity"]["class"] == "simple"
    complex_task = {
        "title": "Payments service",
        "description": "Design a distributed architecture for the payments service and refactor the ledger.",
        "deliverables": ["design doc", "migration plan", "load test"],
        "success_criteria": ["p99 < 50 ms", "no double charges", "zero-downtime rollout"],
    }
    decision = explain(prompt=None, **complex_task)
    assert decision["complexity"]["class"] == "complex", decision["complexity"]
    assert decision["complexity"]["score"] >= 3
    assert decision["rule"] == "versatility first"
    assert any("deliverables" in signal for signal in decision["complexity"]["signals"])


def test_cost_ceiling_drops_known_costs_only(explain: Callable[..., dict[str, Any]]) -> None:
    decision = explain(max_cost_usd=0.003, complexity="medium")
    agents = by_name(decision)
    # At 1000 output tokens: gemini-2.5-flash ~$0.0025 stays; gpt-5.4-mini ~$0.0045 and claude ~$0.015 go.
    assert "exceeds max_cost_usd $0.003" in agents["gpt"]["reasons"][0]
    assert "exceeds max_cost_usd" in agents["claude"]["reasons"][0]
    assert agents["mystery"]["kept"] and "never dropped" in agents["mystery"]["cost_note"]
    assert decision["ranking"] == ["gemini", "mystery", "fallback-llama"]


def test_default_agent_when_cost_filtering_leaves_none(explain: Callable[..., dict[str, Any]]) -> None:
    registry = """
        version: 1
        default_agent: big
        agents:
          - {name: big, type: anthropic-claude, model: claude-sonnet-4-6, capabilities: [research]}
          - {name: small, type: google-gemini, model: gemini-2.5-flash, capabilities: [research]}
    """
    decision = explain(registry_text=registry, max_cost_usd=0.0000001, required_capabilities=["research"])
    assert decision["used_default_agent"] is True
    assert decision["ranking"] == ["big"] and decision["chosen"] == "big"
    assert all(not agent["kept"] for agent in decision["agents"])


def test_no_candidate_and_unqualified_default_is_exit_2_with_reasons(
    explain: Callable[..., dict[str, Any]], tmp_path: Path, write_registry: Callable[..., Path]
) -> None:
    # Only claude can design, but it is outside the simple tier; the default agent cannot design.
    decision = explain(expect_exit=2, complexity="simple", required_capabilities=["design"])
    message = decision["error"]["message"]
    assert decision["error"]["type"] == "no_agent"
    assert "claude: model 'claude-sonnet-4-6' is not in the simple tier" in message
    assert "gpt: missing capabilities: design" in message
    assert "default_agent 'fallback-llama' does not qualify" in message
    # Without --explain: one result object, exit 2, naming the reasons.
    run = run_route({**BASE, "complexity": "simple", "required_capabilities": ["design"]},
                    registry=write_registry(REGISTRY), tmp_path=tmp_path)
    assert run.code == 2 and run.result["error"]["type"] == "no_agent"
    assert run.result["route"]["tried"] == [] and run.result["route"]["chosen"] is None
    assert run.result["agent"] is None and run.result["provider"] == "llm-route"


def test_explain_lists_every_agent_and_calls_nothing(
    write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator
) -> None:
    run = run_route({**BASE, "required_capabilities": ["code"]}, registry=write_registry(REGISTRY),
                    tmp_path=tmp_path, url=emulator.url, args=("--explain",), check_result=False)
    assert run.code == 0
    decision = run.result
    assert [a["name"] for a in decision["agents"]] == ["claude", "gpt", "gemini", "off", "mystery", "fallback-llama"]
    for agent in decision["agents"]:
        assert set(agent) >= {"name", "type", "executor", "model", "kept", "reasons", "estimated_prompt_tokens",
                              "estimated_output_tokens", "estimated_cost_usd", "price_per_mtok"}
    assert by_name(decision)["fallback-llama"]["executor"] == "llm-exec-llama"
    assert set(decision) >= {"complexity", "ranking", "chosen", "failover", "rule", "estimated_prompt_tokens"}
    assert emulator.requests() == []


def test_fallback_false_leaves_one_attempt_in_the_failover_order(explain: Callable[..., dict[str, Any]]) -> None:
    decision = explain(required_capabilities=["code"], complexity="medium", fallback=False)
    assert len(decision["ranking"]) == 4 and decision["failover"] == ["gpt"]


def test_registry_locations(write_registry: Callable[..., Path], tmp_path: Path) -> None:
    spec = {**BASE, "complexity": "medium"}
    text = "version: 1\nagents:\n  - {name: only, type: meta-llama}\n"
    env_path = write_registry(text, "from-env.yaml")
    run = run_route(spec, registry=None, tmp_path=tmp_path, args=("--explain",), check_result=False,
                    env={"LLM_EXEC_REGISTRY": str(env_path)})
    assert run.code == 0 and run.result["registry"] == str(env_path)
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "llm-exec.yaml").write_text(text)
    run = run_route(spec, registry=None, tmp_path=tmp_path, args=("--explain",), check_result=False, cwd=workdir)
    assert run.code == 0 and run.result["registry"] == "llm-exec.yaml"
    xdg = tmp_path / "config" / "llm-exec"
    xdg.mkdir(parents=True)
    (xdg / "registry.yaml").write_text(text)
    run = run_route(spec, registry=None, tmp_path=tmp_path, args=("--explain",), check_result=False)
    assert run.code == 0 and run.result["registry"] == str(xdg / "registry.yaml")
    (xdg / "registry.yaml").unlink()
    run = run_route(spec, registry=None, tmp_path=tmp_path)
    assert run.code == 2 and run.result["error"]["type"] == "registry_not_found"
    assert "LLM_EXEC_REGISTRY" in run.result["error"]["message"]


# -- the pure rules, in-process ----------------------------------------------------------------


class FlatCatalog:
    """Every model at the price given per agent name (None = unknown)."""

    def __init__(self, prices: dict[str, float | None]) -> None:
        self.prices = prices

    def default_model(self, executor: str) -> str:
        return f"{executor}-default"

    def estimate(self, agent: Agent, model: str, input_tokens: int, output_tokens: int) -> CostEstimate:
        return CostEstimate(self.prices.get(agent.name))

    def circuit_wait(self, agent: Agent, model: str, api_endpoint: str | None) -> float | None:
        return None


def test_ties_keep_registry_order() -> None:
    registry = parse_registry("""
version: 1
agents:
  - {name: a, type: custom, capabilities: [code]}
  - {name: b, type: custom, capabilities: [code]}
  - {name: c, type: custom, capabilities: [code, testing]}
""")
    task = TaskSpec({"prompt": "x", "complexity": "medium"})
    assert decide(task, registry, FlatCatalog({"a": 1.0, "b": 1.0, "c": 0.5})).ranking == ("c", "a", "b")
    assert decide(task, registry, FlatCatalog({})).ranking == ("a", "b", "c")
    complex_task = TaskSpec({"prompt": "x", "complexity": "complex"})
    assert decide(complex_task, registry, FlatCatalog({})).ranking == ("c", "a", "b")


def test_model_resolution_task_then_agent_then_executor_default() -> None:
    registry = parse_registry("version: 1\nagents:\n  - {name: a, type: custom}\n"
                              "  - {name: b, type: custom, model: m}\n")
    decision = decide(TaskSpec({"prompt": "x"}), registry, FlatCatalog({}))
    assert [e.model for e in decision.evaluations] == ["custom-default", "m"]
    decision = decide(TaskSpec({"prompt": "x", "model": "forced"}), registry, FlatCatalog({}))
    assert [e.model for e in decision.evaluations] == ["forced", "forced"]


@pytest.mark.parametrize(
    ("task", "level"),
    [
        ({"prompt": "Say hello"}, "simple"),
        ({"prompt": "Summarise this paragraph in one sentence: " + "word " * 100}, "simple"),
        ({"prompt": "word " * 2000}, "medium"),
        ({"prompt": "Debug this race condition in our concurrency code: " + "x " * 2000}, "complex"),
        ({"messages": [{"role": "user", "content": "Refactor the parser"}] * 6}, "medium"),
    ],
)
def test_classify(task: dict[str, Any], level: str) -> None:
    spec = TaskSpec(task)
    assert classify(spec, estimate_prompt_tokens(spec)).level == level


def test_prompt_token_estimate_covers_system_messages_and_rendered_task() -> None:
    rendered = TaskSpec({"title": "T", "description": "d" * 400, "deliverables": ["a"]})
    assert estimate_prompt_tokens(rendered) >= 100
    chat = TaskSpec({"system": "s" * 40, "messages": [{"role": "user", "content": "u" * 40}], "prompt": "p" * 40})
    assert estimate_prompt_tokens(chat) == 3 * (10 + 4)
