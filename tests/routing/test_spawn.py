"""llm-route running executors against the emulator: relay, failover, consensus, deadline, signals."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llm_exec.emulator import Emulator, expected_reply

from .conftest import MISSING_KEY_VAR, PAIR, ROUTE, route_env, run_route

SPEC = {"task_id": "r-1", "prompt": "Write unit tests for the parser", "complexity": "simple", "max_retries": 0,
        "metadata": {"ticket": "RT-9"}}


def paths(emulator: Emulator) -> list[str]:
    return [r["path"] for r in emulator.requests()]


def test_routes_to_the_chosen_agent_with_its_defaults(
    write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator
) -> None:
    run = run_route(SPEC, registry=write_registry(PAIR), tmp_path=tmp_path, url=emulator.url)
    result = run.result
    assert run.code == 0, run.stderr
    assert result["agent"] == "local" and result["provider"] == "ollama" and result["model"] == "llama3.2"
    assert result["output"] == expected_reply("ollama", SPEC["prompt"], max_tokens=64)[0]
    assert result["task_id"] == "r-1" and result["metadata"] == {"ticket": "RT-9"}
    assert result["route"]["chosen"] == "local" and result["route"]["ranking"] == ["local", "gpt"]
    assert result["route"]["tried"] == [{"agent": "local", "exit_code": 0, "error_type": None}]
    # The registry states $0 for the local model: estimated and actual cost are known zeros.
    assert result["route"]["estimated_cost_usd"] == 0 and result["route"]["actual_cost_usd"] == 0
    assert result["route"]["complexity"] == "simple"
    assert len(run.lines) == 1
    [request] = emulator.requests()
    assert request["path"] == "/api/chat"
    # Agent defaults reach the executor: model, max_tokens, temperature.
    assert request["body"]["model"] == "llama3.2"
    assert request["body"]["options"] == {"num_predict": 64, "temperature": 0.3}


def test_task_fields_win_over_agent_defaults(
    write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator
) -> None:
    spec = {**SPEC, "agent": "gpt", "max_tokens": 7, "temperature": 1.5, "model": "gpt-4o-mini"}
    run = run_route(spec, registry=write_registry(PAIR), tmp_path=tmp_path, url=emulator.url)
    assert run.code == 0, run.stderr
    assert run.result["agent"] == "gpt" and run.result["model"] == "gpt-4o-mini"
    body = emulator.requests()[0]["body"]
    assert body["model"] == "gpt-4o-mini" and body["temperature"] == 1.5
    assert body["max_completion_tokens"] == 7
    # gpt-4o-mini is priced by genai-prices; the route's actual cost is the executor's.
    assert run.result["cost_usd"] > 0 and run.result["route"]["actual_cost_usd"] == run.result["cost_usd"]
    assert run.result["route"]["estimated_cost_usd"] > 0


def test_failover_on_exit_1(write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator) -> None:
    emulator.script([{"status": 500}])
    run = run_route(SPEC, registry=write_registry(PAIR), tmp_path=tmp_path, url=emulator.url)
    assert run.code == 0, run.stderr
    assert run.result["agent"] == "gpt" and run.result["provider"] == "openai"
    assert run.result["output"] == expected_reply("openai", SPEC["prompt"], max_tokens=64)[0]
    assert run.result["route"]["chosen"] == "local"
    assert run.result["route"]["tried"] == [
        {"agent": "local", "exit_code": 1, "error_type": "server_error"},
        {"agent": "gpt", "exit_code": 0, "error_type": None},
    ]
    assert paths(emulator) == ["/api/chat", "/v1/chat/completions"]
    assert "agent local: exit 1 (server_error); trying the next agent" in run.stderr
    assert run.result["route"]["actual_cost_usd"] == run.result["cost_usd"]


def test_failover_on_exit_2(write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator) -> None:
    registry = PAIR.replace("    temperature: 0.3\n", f"    api_key_env: {MISSING_KEY_VAR}\n")
    run = run_route(SPEC, registry=write_registry(registry), tmp_path=tmp_path, url=emulator.url)
    assert run.code == 0, run.stderr
    assert run.result["agent"] == "gpt"
    assert run.result["route"]["tried"] == [
        {"agent": "local", "exit_code": 2, "error_type": "missing_api_key"},
        {"agent": "gpt", "exit_code": 0, "error_type": None},
    ]
    assert paths(emulator) == ["/v1/chat/completions"]  # the broken agent never sent anything


def test_no_failover_on_exit_3(write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator) -> None:
    emulator.script([{"status": 400}])
    run = run_route(SPEC, registry=write_registry(PAIR), tmp_path=tmp_path, url=emulator.url)
    assert run.code == 3
    assert run.result["agent"] == "local" and run.result["error"]["type"] == "invalid_request"
    assert run.result["route"]["tried"] == [{"agent": "local", "exit_code": 3, "error_type": "invalid_request"}]
    assert paths(emulator) == ["/api/chat"]


@pytest.mark.parametrize("fields", [{"agent": "local"}, {"fallback": False}])
def test_pinned_agent_and_fallback_false_do_not_fail_over(
    fields: dict[str, Any], write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator
) -> None:
    emulator.script([{"status": 500}])
    run = run_route({**SPEC, **fields}, registry=write_registry(PAIR), tmp_path=tmp_path, url=emulator.url)
    assert run.code == 1
    assert run.result["agent"] == "local" and run.result["error"]["type"] == "server_error"
    assert run.result["route"]["tried"] == [{"agent": "local", "exit_code": 1, "error_type": "server_error"}]
    assert len(emulator.requests()) == 1


def test_every_agent_failing_reports_the_last_attempt(
    write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator
) -> None:
    emulator.script([{"status": 500}, {"status": 401}])
    run = run_route(SPEC, registry=write_registry(PAIR), tmp_path=tmp_path, url=emulator.url)
    assert run.code == 2
    assert run.result["agent"] == "gpt" and run.result["error"]["type"] == "authentication_error"
    assert [t["exit_code"] for t in run.result["route"]["tried"]] == [1, 2]


def test_streaming_relays_the_executor_deltas(
    write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator
) -> None:
    run = run_route({**SPEC, "stream": True}, registry=write_registry(PAIR), tmp_path=tmp_path, url=emulator.url)
    assert run.code == 0, run.stderr
    assert len(run.deltas) > 1 and "".join(run.deltas) == run.result["output"]
    assert run.result["route"]["tried"][0]["agent"] == "local"


CONSENSUS = """
version: 1
agents:
  - {name: llama-a, type: meta-llama, model: llama3.2, price_per_mtok: {input: 0, output: 0}}
  - {name: llama-b, type: meta-llama, model: llama3.1, price_per_mtok: {input: 0, output: 0}}
  - {name: gpt, type: openai-gpt, model: gpt-5.4-mini}
"""


def test_consensus_with_agreeing_agents(
    write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator
) -> None:
    run = run_route(SPEC, registry=write_registry(CONSENSUS), tmp_path=tmp_path, url=emulator.url,
                    args=("--consensus", "2"))
    assert run.code == 0, run.stderr
    consensus = run.result["route"]["consensus"]
    assert consensus["agents"] == ["llama-a", "llama-b"]
    assert consensus["verdict"] == "agree" and consensus["normalized_equal"] is True
    assert consensus["similarity"] == 1.0
    assert [r["output"] for r in consensus["results"]] == [run.result["output"]] * 2
    assert consensus["combined_cost_usd"] == 0
    assert run.result["agent"] == "llama-a"
    assert sorted(r["body"]["model"] for r in emulator.requests()) == ["llama3.1", "llama3.2"]


def test_consensus_with_disagreeing_providers_and_a_broken_agent_replaced(
    write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator
) -> None:
    # llama-a cannot start (its key variable is unset): the next candidate takes its place.
    registry = CONSENSUS.replace("model: llama3.2,", f"model: llama3.2, api_key_env: {MISSING_KEY_VAR},")
    run = run_route(SPEC, registry=write_registry(registry), tmp_path=tmp_path, url=emulator.url,
                    args=("--consensus", "2"))
    assert run.code == 0, run.stderr
    route = run.result["route"]
    consensus = route["consensus"]
    assert consensus["agents"] == ["llama-a", "llama-b", "gpt"]
    assert [t["exit_code"] for t in route["tried"]] == [2, 0, 0]
    assert consensus["verdict"] == "disagree" and consensus["normalized_equal"] is False
    # "Emulated ollama reply to: ..." vs "Emulated openai reply to: ...": one word differs.
    assert 0.5 < consensus["similarity"] < 1
    assert consensus["pairs"] == [{"agents": ["llama-b", "gpt"], "equal": False,
                                   "similarity": consensus["similarity"]}]
    assert run.result["agent"] == "llama-b"
    gpt = next(r for r in consensus["results"] if r["agent"] == "gpt")
    assert consensus["combined_cost_usd"] == gpt["cost_usd"] > 0 and route["actual_cost_usd"] == gpt["cost_usd"]


def test_consensus_needs_enough_candidates(write_registry: Callable[..., Path], tmp_path: Path) -> None:
    run = run_route(SPEC, registry=write_registry(CONSENSUS), tmp_path=tmp_path, args=("--consensus", "4"))
    assert run.code == 2 and run.result["error"]["type"] == "not_enough_agents"


def test_deadline_bounds_the_whole_route(
    write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator
) -> None:
    emulator.script([{"fault": "stall", "seconds": 30}])
    run = run_route({**SPEC, "timeout_seconds": 1.5}, registry=write_registry(PAIR), tmp_path=tmp_path,
                    url=emulator.url)
    assert run.code == 1 and run.result["error"]["type"] in ("timeout", "read_timeout")
    # The first agent used up the route's time: the second is not started.
    assert [t["agent"] for t in run.result["route"]["tried"]] == ["local"]
    assert run.elapsed < 4


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signals_are_forwarded_and_stop_failover(
    signum: signal.Signals, write_registry: Callable[..., Path], tmp_path: Path, emulator: Emulator
) -> None:
    emulator.script([{"fault": "stall", "seconds": 30}])
    proc = subprocess.Popen([ROUTE, "--registry", str(write_registry(PAIR))], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=route_env(emulator.url, tmp_path))
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(SPEC).encode())
    proc.stdin.close()
    deadline = time.monotonic() + 20
    while not emulator.requests() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert emulator.requests(), "the executor never reached the emulator"
    proc.send_signal(signum)
    assert proc.stdout is not None and proc.stderr is not None
    stdout, stderr = proc.stdout.read(), proc.stderr.read()  # until llm-route exits (pytest-timeout guards)
    proc.wait(timeout=20)
    result = json.loads(stdout.decode().splitlines()[-1])
    assert proc.returncode == 1 == result["exit_code"], stderr.decode()
    assert result["status"] == "cancelled" and result["agent"] == "local"
    assert result["route"]["tried"] == [{"agent": "local", "exit_code": 1, "error_type": "cancelled"}]
    assert len(emulator.requests()) == 1
