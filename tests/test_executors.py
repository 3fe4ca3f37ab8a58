"""Every executor, run as a real subprocess of its console script, against the emulator."""

from __future__ import annotations

import json

import pytest

from llm_exec.emulator import Emulator, count_tokens, expected_reply

from .conftest import EXECUTORS, PROVIDER_OF, TEST_KEYS, run_executor

STREAMING = ("claude", "gpt", "gemini", "llama")

SPEC = {
    "task_id": "t-42",
    "agent": "unit-agent",
    "system": "You are terse.",
    "prompt": "Name three primes please",
    "max_tokens": 50,
    "metadata": {"ticket": "ABC-1", "nested": {"n": [1, 2]}},
}


def expected_tokens(spec: dict) -> int:
    return count_tokens(spec["system"]) + count_tokens(spec["prompt"])


def prompt_seen_by(executor: str, spec: dict) -> str:
    """The user text the emulator answers. The seed's custom contract sends one prompt string:
    a multi-turn request is flattened to a "System: ...\n\nUser: ..." transcript."""
    if executor == "custom":
        return f"System: {spec['system']}\n\nUser: {spec['prompt']}"
    return spec["prompt"]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_success(executor: str, emulator: Emulator) -> None:
    run = run_executor(executor, SPEC, url=emulator.url)
    result = run.result
    text, finish = expected_reply(PROVIDER_OF[executor], prompt_seen_by(executor, SPEC), max_tokens=50)
    assert run.code == 0, run.stderr
    assert result["status"] == "success"
    assert result["output"] == text
    # The seed's custom answer has no finish reason unless finish_reason_path maps one.
    assert finish == "stop"
    assert result["finish_reason"] == (None if executor == "custom" else "stop")
    assert result["task_id"] == "t-42" and result["agent"] == "unit-agent"
    assert result["metadata"] == SPEC["metadata"]
    assert result["provider"] == PROVIDER_OF[executor]
    assert result["attempts"] == 1
    assert result["completion_tokens"] == count_tokens(text)
    if executor == "custom":
        expected_prompt_tokens = count_tokens(prompt_seen_by(executor, SPEC))
    else:
        expected_prompt_tokens = expected_tokens(SPEC)
    assert result["prompt_tokens"] == expected_prompt_tokens
    assert result["tokens_used"] == result["prompt_tokens"] + result["completion_tokens"]
    assert run.lines == [result], "a non-streaming run writes exactly one line"
    assert len(emulator.requests()) == 1


@pytest.mark.parametrize("executor", STREAMING)
def test_streaming_deltas_concatenate_to_output(executor: str, emulator: Emulator) -> None:
    run = run_executor(executor, {**SPEC, "stream": True}, url=emulator.url)
    assert run.code == 0, run.stderr
    assert len(run.deltas) > 1
    assert "".join(run.deltas) == run.result["output"]
    text, _ = expected_reply(PROVIDER_OF[executor], SPEC["prompt"], max_tokens=50)
    assert run.result["output"] == text
    assert run.result["completion_tokens"] == count_tokens(text)
    assert run.result["prompt_tokens"] == expected_tokens(SPEC)


def test_stream_flag_equals_stream_field(emulator: Emulator) -> None:
    run = run_executor("gpt", SPEC, url=emulator.url, args=("--stream",))
    assert run.code == 0 and run.deltas
    body = emulator.requests()[-1]["body"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_custom_has_no_streaming_contract(emulator: Emulator) -> None:
    run = run_executor("custom", {**SPEC, "stream": True}, url=emulator.url)
    assert run.code == 0 and run.deltas == [] and len(run.lines) == 1


@pytest.mark.parametrize("executor", EXECUTORS)
def test_429_with_retry_after_then_success(executor: str, emulator: Emulator) -> None:
    emulator.script([{"status": 429, "headers": {"retry-after": "1"}}])
    run = run_executor(executor, SPEC, url=emulator.url)
    assert run.code == 0, run.stderr
    assert run.result["attempts"] == 2
    times = [r["time"] for r in emulator.requests()]
    assert len(times) == 2 and times[1] - times[0] >= 0.95  # the server's wait was honoured


@pytest.mark.parametrize("executor", EXECUTORS)
def test_persistent_500_is_exit_1_after_retries(executor: str, emulator: Emulator) -> None:
    emulator.script([{"status": 500, "times": 10}])
    run = run_executor(executor, {**SPEC, "max_retries": 1}, url=emulator.url)
    assert run.code == 1
    assert run.result["status"] == "error"
    assert run.result["error"]["type"] == "server_error"
    assert run.result["error"]["retryable"] is True
    assert run.result["error"]["status_code"] == 500
    assert run.result["attempts"] == 2 == len(emulator.requests())


@pytest.mark.parametrize("executor", EXECUTORS)
def test_401_is_configuration_error(executor: str, emulator: Emulator) -> None:
    emulator.script([{"status": 401}])
    run = run_executor(executor, SPEC, url=emulator.url)
    assert run.code == 2
    assert run.result["error"]["type"] == "authentication_error"
    assert run.result["attempts"] == 1


def test_gemini_api_key_invalid_is_configuration_error(emulator: Emulator) -> None:
    emulator.script([{"status": 400, "gemini_api_key_invalid": True}])
    run = run_executor("gemini", SPEC, url=emulator.url)
    assert run.code == 2
    assert run.result["error"]["type"] == "authentication_error"
    assert run.result["error"]["status_code"] == 400


@pytest.mark.parametrize("executor", EXECUTORS)
def test_400_is_task_spec_error(executor: str, emulator: Emulator) -> None:
    emulator.script([{"status": 400}])
    run = run_executor(executor, SPEC, url=emulator.url)
    assert run.code == 3
    assert run.result["error"]["type"] == "invalid_request"


@pytest.mark.parametrize("executor", EXECUTORS)
def test_404_unknown_model_is_configuration_error(executor: str, emulator: Emulator) -> None:
    emulator.script([{"status": 404}])
    run = run_executor(executor, {**SPEC, "model": "no-such-model"}, url=emulator.url)
    assert run.code == 2
    assert run.result["error"]["type"] == "model_not_found"
    assert run.result["model"] == "no-such-model"


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{not json", None),
        (b'{"prompt": "x", "max_tokens": -1}', "max_tokens"),
        (b'{"prompt": "x", "modle": "y"}', "modle"),
    ],
)
def test_bad_stdin_is_exit_3(executor: str, raw: bytes, field: str | None) -> None:
    run = run_executor(executor, None, raw_input=raw)
    assert run.code == 3
    assert run.result["error"]["type"] == "task_spec_error"
    assert run.result["error"]["field"] == field
    assert run.result["attempts"] == 0


@pytest.mark.parametrize("executor", ("claude", "gpt", "gemini"))
def test_missing_key_is_configuration_error(executor: str, emulator: Emulator) -> None:
    unset = {name: None for name in TEST_KEYS}
    run = run_executor(executor, SPEC, url=emulator.url, env=unset)
    assert run.code == 2
    assert run.result["error"]["type"] == "missing_api_key"
    assert emulator.requests() == []


def test_api_key_env_names_the_variable(emulator: Emulator) -> None:
    run = run_executor("gpt", {**SPEC, "api_key_env": "MY_TEAM_KEY"}, url=emulator.url,
                       env={"MY_TEAM_KEY": "team-key-123456789"})
    assert run.code == 0
    missing = run_executor("gpt", {**SPEC, "api_key_env": "UNSET_KEY_VAR"}, url=emulator.url)
    assert missing.code == 2 and missing.result["error"]["field"] == "api_key_env"


@pytest.mark.parametrize("endpoint", ["not a url", "ftp://127.0.0.1/x", "http://", "http://127.0.0.1:99999"])
def test_malformed_endpoint_is_configuration_error(endpoint: str) -> None:
    run = run_executor("gpt", {**SPEC, "api_endpoint": endpoint}, env={"OPENAI_API_KEY": "k" * 10})
    assert run.code == 2
    assert run.result["error"]["type"] == "invalid_endpoint"
    assert run.result["error"]["field"] == "api_endpoint"


@pytest.mark.parametrize("executor", EXECUTORS)
def test_connection_refused_is_exit_1(executor: str, emulator: Emulator) -> None:
    url = emulator.url
    emulator.stop()  # nothing listens there any more
    run = run_executor(executor, {**SPEC, "max_retries": 1}, url=url)
    assert run.code == 1
    assert run.result["error"]["type"] == "connection_error"
    assert run.result["error"]["retryable"] is True
    assert run.result["attempts"] == 2


@pytest.mark.parametrize("executor", EXECUTORS)
def test_deadline_is_honoured_on_a_stalled_server(executor: str, emulator: Emulator) -> None:
    emulator.script([{"fault": "stall", "seconds": 30, "times": 5}])
    run = run_executor(executor, {**SPEC, "timeout_seconds": 3}, url=emulator.url)
    assert run.code == 1
    assert run.result["error"]["type"] in ("timeout", "read_timeout")
    # timeout_seconds counts from process start: the whole process ends within it (+1 s slack).
    assert run.elapsed < 4.0, run.elapsed
    assert run.result["execution_time_seconds"] < 4.0


@pytest.mark.parametrize("executor", EXECUTORS)
def test_dry_run_sends_nothing_and_redacts_the_key(executor: str, emulator: Emulator) -> None:
    run = run_executor(executor, SPEC, url=emulator.url, args=("--dry-run",))
    assert run.code == 0, run.stderr
    out = run.lines[0]
    assert out["dry_run"] is True and out["request"]["method"] == "POST"
    assert out["request"]["url"].startswith(emulator.url)
    assert emulator.requests() == []
    for key in TEST_KEYS.values():
        assert key not in run.stdout and key not in run.stderr


@pytest.mark.parametrize("executor", ("claude", "gpt", "gemini", "custom"))
def test_key_echoed_by_provider_is_redacted(executor: str, emulator: Emulator) -> None:
    emulator.script([{"fault": "echo_key", "status": 401}])
    run = run_executor(executor, SPEC, url=emulator.url)
    assert run.code == 2
    for key in TEST_KEYS.values():
        assert key not in run.stdout and key not in run.stderr
    assert "[REDACTED]" in run.result["error"]["message"]


@pytest.mark.parametrize("schema", ["task", "result"])
def test_schema_flag_prints_the_schema(schema: str) -> None:
    import subprocess

    from .conftest import BIN_DIR, REPO_ROOT

    out = subprocess.run([str(BIN_DIR / "llm-exec-gpt"), "--schema", schema], capture_output=True, check=True)
    assert json.loads(out.stdout) == json.loads((REPO_ROOT / "schemas" / f"{schema}.schema.json").read_text())


def test_unknown_flag_still_writes_a_result() -> None:
    run = run_executor("claude", SPEC, args=("--bogus",))
    assert run.code == 2 and run.result["error"]["type"] == "usage_error"


def test_cost_is_priced_by_genai_prices(emulator: Emulator) -> None:
    run = run_executor("gpt", {**SPEC, "model": "gpt-4o-mini"}, url=emulator.url)
    from genai_prices import Usage, calc_price

    price = calc_price(Usage(input_tokens=run.result["prompt_tokens"], output_tokens=run.result["completion_tokens"]),
                       "gpt-4o-mini", provider_id="openai")
    assert run.result["cost_usd"] == pytest.approx(float(price.total_price))
    unknown = run_executor("gpt", {**SPEC, "model": "my-finetune-xyz"}, url=emulator.url)
    assert unknown.result["cost_usd"] is None
    local = run_executor("llama", SPEC, url=emulator.url)
    assert local.result["cost_usd"] is None
