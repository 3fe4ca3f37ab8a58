"""llm-route's failover on what a provider's 400 body says (issue 13): a prompt over one agent's
context window moves on to agents with a larger `context_window`; a gateway's 400 for an unknown
model is the agent's configuration (exit 2) and moves on like any exit 2. Real subprocesses against
the emulator's recorded-shape bodies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llm_exec.emulator import Emulator, expected_reply

from .conftest import PAIR, run_route

SPEC = {"task_id": "ctx-1", "prompt": "Write unit tests for the parser", "complexity": "simple", "max_retries": 0}

# PAIR with windows: the local model is small, gpt large.
WINDOWED_PAIR = PAIR.replace("    temperature: 0.3\n", "    temperature: 0.3\n    context_window: 2048\n").replace(
    "    capabilities: [code, testing]\n", "    capabilities: [code, testing]\n    context_window: 128000\n")

# Six agents, cheapest first in this order (stated prices), with windows that the failover must sort:
# a (2048) overflows; b (1024) and c (unknown) are passed over; d (8192) overflows too; e (4096) is
# then not larger; f (200000) answers.
SIX = """
version: 1
agents:
  - {name: a, type: meta-llama, model: llama3.2, capabilities: [code], max_tokens: 64, context_window: 2048,
     price_per_mtok: {input: 0, output: 0}}
  - {name: b, type: openai-gpt, model: gpt-5.4-mini, capabilities: [code], max_tokens: 64, context_window: 1024,
     price_per_mtok: {input: 0.1, output: 0.1}}
  - {name: c, type: openai-gpt, model: gpt-5.4-mini, capabilities: [code], max_tokens: 64,
     price_per_mtok: {input: 0.2, output: 0.2}}
  - {name: d, type: anthropic-claude, model: claude-sonnet-4-6, capabilities: [code], max_tokens: 64,
     context_window: 8192, price_per_mtok: {input: 0.3, output: 0.3}}
  - {name: e, type: google-gemini, model: gemini-2.5-flash, capabilities: [code], max_tokens: 64,
     context_window: 4096, price_per_mtok: {input: 0.4, output: 0.4}}
  - {name: f, type: openai-gpt, model: gpt-5.4, capabilities: [code], max_tokens: 64, context_window: 200000,
     price_per_mtok: {input: 0.5, output: 0.5}}
"""


def paths(emulator: Emulator) -> list[str]:
    return [r["path"] for r in emulator.requests()]


def test_context_length_exceeded_fails_over_to_a_larger_window(
    write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator
) -> None:
    emulator.script([{"error_body": "context_length"}])  # Ollama: "the input length exceeds the context length"
    run = run_route(SPEC, registry=write_registry(WINDOWED_PAIR), tmp_path=tmp_path, url=emulator.url)
    assert run.code == 0, run.stderr
    assert run.result["agent"] == "gpt" and run.result["provider"] == "openai"
    assert run.result["output"] == expected_reply("openai", SPEC["prompt"], max_tokens=64)[0]
    reason = "the prompt does not fit context_window 2048: trying the agents with a larger one (gpt)"
    assert run.result["route"]["tried"] == [
        {"agent": "local", "exit_code": 3, "error_type": "context_length_exceeded",
         "failover": {"reason": reason, "context_window": 2048, "next": ["gpt"], "skipped": []}},
        {"agent": "gpt", "exit_code": 0, "error_type": None},
    ]
    assert paths(emulator) == ["/api/chat", "/v1/chat/completions"]
    assert f"agent local: exit 3 (context_length_exceeded); {reason}" in run.stderr


def test_gateway_400_invalid_model_fails_over(
    write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator
) -> None:
    # A LiteLLM proxy in front of the local agent does not serve its model: exit 2, next agent.
    emulator.script([{"error_body": "litellm_invalid_model"}])
    run = run_route(SPEC, registry=write_registry(PAIR), tmp_path=tmp_path, url=emulator.url)
    assert run.code == 0, run.stderr
    assert run.result["agent"] == "gpt"
    assert run.result["route"]["tried"] == [
        {"agent": "local", "exit_code": 2, "error_type": "model_not_found"},
        {"agent": "gpt", "exit_code": 0, "error_type": None},
    ]
    assert paths(emulator) == ["/api/chat", "/v1/chat/completions"]


def test_gateway_400_no_db_fails_over(write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator) -> None:
    emulator.script([{"error_body": "litellm_no_db"}])
    run = run_route(SPEC, registry=write_registry(PAIR), tmp_path=tmp_path, url=emulator.url)
    assert run.code == 0, run.stderr
    assert [t["error_type"] for t in run.result["route"]["tried"]] == ["authentication_error", None]


def test_only_larger_known_windows_are_tried(
    write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator
) -> None:
    emulator.script([{"error_body": "context_length"}, {"error_body": "context_length"}])
    run = run_route(SPEC, registry=write_registry(SIX), tmp_path=tmp_path, url=emulator.url)
    assert run.code == 0, run.stderr
    assert run.result["agent"] == "f"
    assert run.result["route"]["ranking"] == ["a", "b", "c", "d", "e", "f"]
    tried = run.result["route"]["tried"]
    assert [(t["agent"], t["exit_code"], t["error_type"]) for t in tried] == [
        ("a", 3, "context_length_exceeded"), ("d", 3, "context_length_exceeded"), ("f", 0, None)]
    assert tried[0]["failover"] == {
        "reason": "the prompt does not fit context_window 2048: trying the agents with a larger one (d, e, f)",
        "context_window": 2048, "next": ["d", "e", "f"], "skipped": ["b", "c"]}
    assert tried[1]["failover"] == {
        "reason": "the prompt does not fit context_window 8192: trying the agents with a larger one (f)",
        "context_window": 8192, "next": ["f"], "skipped": ["e"]}
    assert paths(emulator) == ["/api/chat", "/v1/messages", "/v1/chat/completions"]
    assert "agent b: not tried after context_length_exceeded: context_window 1024 is not larger than 2048" in run.stderr
    assert ("agent c: not tried after context_length_exceeded: no context_window in the registry "
            "(not known to be larger)") in run.stderr
    assert "agent e: not tried after context_length_exceeded: context_window 4096 is not larger than 8192" in run.stderr


def test_no_failover_when_the_failed_agent_has_no_window(
    write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator
) -> None:
    emulator.script([{"error_body": "context_length"}])
    run = run_route(SPEC, registry=write_registry(PAIR), tmp_path=tmp_path, url=emulator.url)
    assert run.code == 3
    assert run.result["agent"] == "local" and run.result["error"]["type"] == "context_length_exceeded"
    reason = "local has no context_window in the registry: no agent is known to be larger, no failover"
    assert run.result["route"]["tried"] == [
        {"agent": "local", "exit_code": 3, "error_type": "context_length_exceeded",
         "failover": {"reason": reason, "context_window": None, "next": [], "skipped": ["gpt"]}}]
    assert paths(emulator) == ["/api/chat"]


def test_no_failover_when_no_window_is_larger(
    write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator
) -> None:
    registry = WINDOWED_PAIR.replace("context_window: 128000", "context_window: 2048")
    emulator.script([{"error_body": "context_length"}])
    run = run_route(SPEC, registry=write_registry(registry), tmp_path=tmp_path, url=emulator.url)
    assert run.code == 3 and run.result["agent"] == "local"
    assert run.result["route"]["tried"][0]["failover"] == {
        "reason": "the prompt does not fit context_window 2048 and no other agent has a larger one: no failover",
        "context_window": 2048, "next": [], "skipped": ["gpt"]}
    assert paths(emulator) == ["/api/chat"]


@pytest.mark.parametrize("fields", [{"agent": "local"}, {"fallback": False}])
def test_pinned_or_fallback_false_do_not_fail_over(
    fields: dict[str, Any], write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator
) -> None:
    emulator.script([{"error_body": "context_length"}])
    run = run_route({**SPEC, **fields}, registry=write_registry(WINDOWED_PAIR), tmp_path=tmp_path, url=emulator.url)
    assert run.code == 3
    assert run.result["route"]["tried"] == [{"agent": "local", "exit_code": 3, "error_type": "context_length_exceeded"}]
    assert paths(emulator) == ["/api/chat"]


def test_other_exit_3_still_stops_with_windows_set(
    write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator
) -> None:
    emulator.script([{"status": 400}])  # an ordinary invalid request
    run = run_route(SPEC, registry=write_registry(WINDOWED_PAIR), tmp_path=tmp_path, url=emulator.url)
    assert run.code == 3
    assert run.result["route"]["tried"] == [{"agent": "local", "exit_code": 3, "error_type": "invalid_request"}]
    assert paths(emulator) == ["/api/chat"]


def test_explain_shows_windows_and_the_context_failover(write_registry: Callable[..., Path], tmp_path: Path) -> None:
    run = run_route(SPEC, registry=write_registry(SIX), tmp_path=tmp_path, args=("--explain",), check_result=False)
    assert run.code == 0, run.stderr
    decision = run.result
    assert {a["name"]: a["context_window"] for a in decision["agents"]} == {
        "a": 2048, "b": 1024, "c": None, "d": 8192, "e": 4096, "f": 200000}
    assert decision["context_failover"] == {
        "a": ["d", "e", "f"], "b": ["d", "e", "f"], "c": [], "d": ["f"], "e": ["f"], "f": []}
