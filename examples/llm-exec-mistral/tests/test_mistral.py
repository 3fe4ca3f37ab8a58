"""The Mistral plugin end to end: found through its entry point, run by llm-exec's own commands
(`llm-exec run --provider mistral`, `--stream`, `--batch`, the warm daemon, llm-route), over real HTTP
to the emulator's Mistral wire, which refuses the OpenAI-only fields Mistral refuses."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price
from llm_exec.emulator import Emulator, expected_reply
from llm_exec.providers.registry import find_entry, get_provider, provider_for_agent_type

from llm_exec_mistral import MistralLlm
from mistral_testing import (
    LLM_EXEC,
    LLM_ROUTE,
    SCRUBBED_ENV,
    TEST_KEY,
    Daemon,
    Run,
    calls,
    mistral_env,
    run,
    run_mistral,
)

PROMPT = "Name three primes please"
SPEC = {"task_id": "m-1", "prompt": PROMPT, "max_tokens": 50, "seed": 7, "metadata": {"ticket": "M-1"}}
# OpenAI fields that Mistral answers with 422 extra_forbidden.
OPENAI_ONLY = ("max_completion_tokens", "seed", "stream_options")
# What differs between two runs of the same task, whichever way they run.
VOLATILE = ("timestamp", "execution_time_seconds", "request_id")


def expected_cost(prompt_tokens: int, completion_tokens: int, model: str = MistralLlm.default_model) -> float:
    price = calc_price(PriceUsage(input_tokens=prompt_tokens, output_tokens=completion_tokens), model,
                       provider_id=MistralLlm.pricing_provider)
    return float(price.total_price)


def assert_success(outcome: Run, *, max_tokens: int = 50, task_id: str | None = "m-1") -> None:
    result = outcome.result
    text, finish = expected_reply("mistral", PROMPT, max_tokens)
    assert outcome.code == 0, (result, outcome.stderr)
    assert result["status"] == "success"
    assert result["provider"] == "mistral"
    assert result["task_id"] == task_id
    assert result["output"] == text
    assert result["model"] == result["response_model"] == MistralLlm.default_model
    assert result["finish_reason"] == finish
    assert result["prompt_tokens"] == len(PROMPT.split())
    assert result["completion_tokens"] == len(text.split())
    assert result["tokens_used"] == result["prompt_tokens"] + result["completion_tokens"]
    # Mistral reports no token details: unknown, never a made-up 0.
    assert result["cached_tokens"] is None and result["reasoning_tokens"] is None
    assert result["attempts"] == 1


# -- registration ------------------------------------------------------------------------------


def test_the_entry_point_registers_the_provider() -> None:
    entry = find_entry("mistral")
    assert (entry.package, entry.builtin, entry.target) == ("llm-exec-mistral", False, "llm_exec_mistral:MistralLlm")
    assert get_provider("mistral") is MistralLlm
    assert provider_for_agent_type("mistral") == provider_for_agent_type("mistral-ai") == "mistral"


def test_declarations() -> None:
    assert MistralLlm.name == "mistral"
    assert MistralLlm.key_env_vars == ("MISTRAL_API_KEY",)
    assert MistralLlm.base_url_env_vars == ("MISTRAL_BASE_URL",)
    assert MistralLlm.default_base_url == "https://api.mistral.ai/v1"
    assert MistralLlm.executable is None
    assert MistralLlm.gen_ai_provider == "mistral_ai"
    # Nothing of the OpenAI provider's identity is inherited: no `type: openai-gpt`, no "openai" alias.
    assert MistralLlm.agent_types == ("mistral-ai",) and MistralLlm.provider_aliases == ()
    # genai-prices knows the default model under the declared provider id.
    assert expected_cost(1_000_000, 0) > 0


def test_llm_exec_providers_lists_the_plugin(emulator: Emulator) -> None:
    env = {**os.environ, **mistral_env(emulator)}
    proc = subprocess.run([LLM_EXEC, "providers", "--json"], capture_output=True, text=True, env=env, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    (listed,) = [p for p in json.loads(proc.stdout)["providers"] if p["name"] == "mistral"]
    assert listed["error"] is None
    assert (listed["package"], listed["builtin"], listed["target"]) == (
        "llm-exec-mistral", False, "llm_exec_mistral:MistralLlm")
    assert listed["agent_types"] == ["mistral", "mistral-ai"]
    assert listed["base_url"] == mistral_env(emulator)["MISTRAL_BASE_URL"]  # MISTRAL_BASE_URL is honoured
    assert listed["key"]["set"] == "MISTRAL_API_KEY"
    assert (listed["pricing_provider"], listed["default_model"]) == ("mistral", "mistral-small-latest")
    assert listed["run"] == "llm-exec run --provider mistral"
    # The table names it too, beside the built-ins.
    table = subprocess.run([LLM_EXEC, "providers"], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert any(row.split()[:2] == ["mistral", "llm-exec-mistral"] for row in table.stdout.splitlines()), table.stdout
    assert TEST_KEY not in proc.stdout + table.stdout


# -- one task -------------------------------------------------------------------------------------


def test_one_shot(emulator: Emulator) -> None:
    outcome = run_mistral(SPEC, env=mistral_env(emulator))
    assert_success(outcome)
    assert outcome.result["metadata"] == {"ticket": "M-1"}
    (request,) = calls(emulator)
    assert request["path"] == "/mistral/v1/chat/completions"
    assert request["auth_scheme"].lower() == "bearer"
    body = request["body"]
    assert body["max_tokens"] == 50 and body["random_seed"] == 7
    assert not set(OPENAI_ONLY) & set(body), body
    assert TEST_KEY not in outcome.stdout + outcome.stderr


def test_cost_comes_from_genai_prices(emulator: Emulator) -> None:
    result = run_mistral(SPEC, env=mistral_env(emulator)).result
    assert result["cost_usd"] == pytest.approx(expected_cost(result["prompt_tokens"], result["completion_tokens"]),
                                               rel=1e-9)
    assert result["cost_usd"] > 0
    # Another model is priced at its own rates.
    other = run_mistral({**SPEC, "model": "mistral-large-latest"}, env=mistral_env(emulator)).result
    assert other["cost_usd"] == pytest.approx(
        expected_cost(other["prompt_tokens"], other["completion_tokens"], "mistral-large-latest"), rel=1e-9)
    assert other["cost_usd"] > result["cost_usd"]


def test_stream(emulator: Emulator) -> None:
    outcome = run_mistral(SPEC, "--stream", env=mistral_env(emulator))
    assert_success(outcome)
    assert len(outcome.deltas) > 1
    assert "".join(outcome.deltas) == outcome.result["output"]
    # Counts and cost from the usage Mistral puts in the last chunk, without stream_options.
    assert outcome.result.get("usage_note") is None
    assert outcome.result["cost_usd"] is not None
    (request,) = calls(emulator)
    assert request["body"]["stream"] is True
    assert not set(OPENAI_ONLY) & set(request["body"]), request["body"]


def test_batch(emulator: Emulator) -> None:
    specs = [{**SPEC, "task_id": f"b-{i}"} for i in range(3)]
    lines = [json.dumps(specs[0]), json.dumps(specs[1]), '{"prompt": 5}', json.dumps(specs[2])]
    outcome = run_mistral("\n".join(lines) + "\n", "--batch", "--concurrency", "2", env=mistral_env(emulator))
    assert [r["exit_code"] for r in outcome.lines] == [0, 0, 3, 0]
    assert outcome.code == 3  # the only failure is the bad line
    for result, task_id in zip([outcome.lines[i] for i in (0, 1, 3)], ("b-0", "b-1", "b-2"), strict=True):
        assert result["task_id"] == task_id and result["provider"] == "mistral"
        assert result["cost_usd"] is not None
    assert len(calls(emulator)) == 3


def test_dry_run_shows_the_mistral_body() -> None:
    outcome = run_mistral(SPEC, "--dry-run", env={"MISTRAL_API_KEY": TEST_KEY})
    assert outcome.code == 0, outcome.stderr
    request = outcome.result["request"]
    assert request["url"] == "https://api.mistral.ai/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer [REDACTED]"
    assert request["body"]["random_seed"] == 7 and request["body"]["max_tokens"] == 50
    assert not set(OPENAI_ONLY) & set(request["body"])
    assert TEST_KEY not in outcome.stdout


# -- configuration errors ---------------------------------------------------------------------------


def test_missing_key_is_exit_2(emulator: Emulator) -> None:
    env = {**mistral_env(emulator), "MISTRAL_API_KEY": None}
    outcome = run_mistral(SPEC, env=env)
    assert outcome.code == 2
    assert outcome.result["error"]["type"] == "missing_api_key"
    assert "MISTRAL_API_KEY" in outcome.result["error"]["message"]
    assert calls(emulator) == []


def test_rejected_key_is_exit_2(emulator: Emulator) -> None:
    emulator.script([{"status": 401}])
    outcome = run_mistral(SPEC, env=mistral_env(emulator))
    assert outcome.code == 2
    assert outcome.result["error"]["type"] == "authentication_error"
    assert outcome.result["attempts"] == 1


def test_context_overflow_is_exit_3(emulator: Emulator) -> None:
    # Mistral's wording for a prompt over the context window (a 400): the core reads it from the body.
    emulator.script([{"status": 400, "body": {
        "object": "error", "type": "invalid_request_error", "param": None, "code": None,
        "message": "Prompt contains 40000 tokens, too large for model with 32768 maximum context length"}}])
    outcome = run_mistral(SPEC, env=mistral_env(emulator))
    assert outcome.code == 3
    assert outcome.result["error"]["type"] == "context_length_exceeded"
    assert "maximum context length" in outcome.result["error"]["message"]


def test_model_length_is_a_length_finish(emulator: Emulator) -> None:
    completion = {"id": "c0ffee", "object": "chat.completion", "created": 0, "model": MistralLlm.default_model,
                  "choices": [{"index": 0, "finish_reason": "model_length",
                               "message": {"role": "assistant", "content": "cut", "tool_calls": None}}],
                  "usage": {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5}}
    emulator.script([{"status": 200, "body": completion}])
    outcome = run_mistral(SPEC, env=mistral_env(emulator))
    assert outcome.code == 0
    assert outcome.result["finish_reason"] == "length"


# -- what the core gives the plugin for free ---------------------------------------------------------


def test_retries(emulator: Emulator) -> None:
    emulator.script([{"status": 429, "headers": {"retry-after-ms": "10"}}, {"status": 503}])
    outcome = run_mistral(SPEC, env=mistral_env(emulator))
    assert outcome.code == 0, outcome.result
    assert outcome.result["attempts"] == 3
    assert len(calls(emulator)) == 3


def test_deadline(emulator: Emulator) -> None:
    emulator.script([{"fault": "stall", "seconds": 30}])
    outcome = run_mistral({**SPEC, "timeout_seconds": 1.5}, env=mistral_env(emulator))
    assert outcome.code == 1
    assert outcome.result["error"]["type"] in ("timeout", "read_timeout")
    assert outcome.elapsed < 1.5 + 4  # the deadline, plus the interpreter's start-up on a busy machine


def test_shared_circuit_breaker(emulator: Emulator) -> None:
    env = {**mistral_env(emulator), "LLM_EXEC_BREAKER_THRESHOLD": "2"}
    emulator.script([{"status": 500}, {"status": 500}])
    for _ in range(2):
        failed = run_mistral({**SPEC, "max_retries": 0}, env=env)
        assert failed.code == 1 and failed.result["error"]["type"] == "server_error"
    blocked = run_mistral(SPEC, env=env)
    assert blocked.code == 1 and blocked.result["error"]["type"] == "circuit_open"
    assert len(calls(emulator)) == 2  # the third process never reached the network


def test_a_request_mistral_refuses_is_exit_3(emulator: Emulator) -> None:
    """The emulator's Mistral wire answers OpenAI's fields with 422, as Mistral does: what a body in
    the OpenAI shape gets (here sent by the openai provider itself, at the Mistral route)."""
    env = {"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": emulator.url + MistralLlm.emulator_path}
    outcome = run([LLM_EXEC, "run", "--provider", "gpt"], json.dumps(SPEC), env)
    assert outcome.code == 3
    assert outcome.result["error"]["type"] == "invalid_request"
    assert "extra_forbidden" in outcome.result["error"]["message"]


# -- the warm daemon ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    directory = tmp_path_factory.mktemp("daemon")
    # Set up before the per-test isolation, so isolated here: scrubbed, with a state dir of its own.
    env = {name: value for name, value in os.environ.items() if name not in SCRUBBED_ENV}
    env.update(LLM_EXEC_STATE_DIR=str(directory / "state"), XDG_CACHE_HOME=str(directory / "cache"),
               LLM_EXEC_DAEMON="off")
    # A key and endpoint of the daemon's own: a task must get its caller's instead.
    env.update(MISTRAL_API_KEY="daemon-own-key-0123456789", MISTRAL_BASE_URL="http://127.0.0.1:9/v1")
    warm = Daemon(directory, env)
    yield warm
    assert warm.stop() == 0
    assert "Traceback" not in warm.log.read_text(), warm.log.read_text()


def stable(outcome: Run) -> dict[str, Any]:
    return {name: value for name, value in outcome.result.items() if name not in VOLATILE}


@pytest.mark.parametrize("flags", [(), ("--stream",)], ids=["one-shot", "stream"])
def test_through_the_daemon(emulator: Emulator, daemon: Daemon, flags: tuple[str, ...]) -> None:
    in_process = run_mistral(SPEC, *flags, env=mistral_env(emulator))
    before = daemon.served()
    warm = run_mistral(SPEC, *flags, env={**mistral_env(emulator), "LLM_EXEC_DAEMON": daemon.socket})
    assert daemon.wait_served(before + 1), "the daemon served none of this test's calls:\n" + daemon.log.read_text()
    served = [line for line in daemon.log.read_text().splitlines() if " exit " in line]
    assert "--provider mistral" in served[-1], served[-1]
    assert_success(warm)
    assert stable(warm) == stable(in_process)
    assert warm.deltas == in_process.deltas
    # The caller's key and endpoint, not the daemon's.
    assert len(calls(emulator)) == 2


# -- llm-route ------------------------------------------------------------------------------------


def registry(path: Path, agent_type: str) -> Path:
    path.write_text(f"""\
version: 1
agents:
  - name: le-chat
    type: {agent_type}
    model: {MistralLlm.default_model}
    capabilities: [documentation, analysis]
    max_tokens: 50
""")
    return path


@pytest.mark.parametrize("agent_type", ["mistral", "mistral-ai"])
def test_llm_route(emulator: Emulator, tmp_path: Path, agent_type: str) -> None:
    path = registry(tmp_path / "registry.yaml", agent_type)
    spec = {"task_id": "m-1", "prompt": PROMPT, "required_capabilities": ["documentation"]}
    outcome = run([LLM_ROUTE, "--registry", str(path)], json.dumps(spec), mistral_env(emulator))
    assert_success(outcome)
    assert outcome.result["agent"] == "le-chat"
    route = outcome.result["route"]
    assert route["chosen"] == "le-chat" and [t["exit_code"] for t in route["tried"]] == [0]
    # The decision priced the agent from genai-prices, through the plugin's pricing id.
    assert route["estimated_cost_usd"] is not None and route["estimated_cost_usd"] > 0
    assert route["actual_cost_usd"] == pytest.approx(outcome.result["cost_usd"])


def test_llm_route_fails_over_from_mistral_without_a_key(emulator: Emulator, tmp_path: Path) -> None:
    """An agent of a plugin's type fails like any other: exit 2 (its key) moves on to the next agent."""
    path = tmp_path / "registry.yaml"
    path.write_text("""\
version: 1
agents:
  - name: le-chat
    type: mistral-ai
    capabilities: [documentation]
    api_key_env: MISTRAL_KEY_NOT_SET
  - name: le-chat-backup
    type: mistral
    capabilities: [documentation]
""")
    spec = {"task_id": "m-1", "prompt": PROMPT, "max_tokens": 50, "required_capabilities": ["documentation"],
            "preferred_types": ["mistral-ai"]}
    outcome = run([LLM_ROUTE, "--registry", str(path)], json.dumps(spec), mistral_env(emulator))
    assert_success(outcome)
    assert [(t["agent"], t["exit_code"], t["error_type"]) for t in outcome.result["route"]["tried"]] == [
        ("le-chat", 2, "missing_api_key"), ("le-chat-backup", 0, None)]
    assert len(calls(emulator)) == 1
