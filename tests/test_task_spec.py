"""Task spec parsing: every bad input is a TaskSpecError naming the field at fault."""

from __future__ import annotations

import json

import pytest

from llm_exec.errors import TaskSpecError
from llm_exec.task import parse_task, render_task_prompt


def parse(obj: object) -> object:
    return parse_task(json.dumps(obj).encode())


def spec_error(data: bytes) -> TaskSpecError:
    with pytest.raises(TaskSpecError) as info:
        parse_task(data)
    assert info.value.exit_code == 3
    return info.value


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"prompt": "x", "promt": "typo"}, "promt"),
        ({"prompt": "x", "max_tokens": 0}, "max_tokens"),
        ({"prompt": "x", "max_tokens": "100"}, "max_tokens"),
        ({"prompt": "x", "temperature": 2.5}, "temperature"),
        ({"prompt": 5}, "prompt"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "hi", "name": "x"}]}, "messages[0].name"),
        ({"prompt": "x", "api_key_env": "sk-not-a-name!"}, "api_key_env"),
        ({"prompt": "x", "metadata": []}, "metadata"),
        ({"prompt": "x", "stop": "END"}, "stop"),
        ({"title": "only a title"}, "prompt"),
        ({"prompt": "x", "max_retries": -1}, "max_retries"),
    ],
)
def test_schema_violations_name_the_field(spec: dict, field: str) -> None:
    error = spec_error(json.dumps(spec).encode())
    assert error.field == field, error.message


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "no task spec"),
        (b"   \n", "no task spec"),
        (b"not json", "not valid JSON"),
        (b"\xff\xfe{}", "UTF-8"),
        (b"[1, 2]", "JSON object"),
        (b'"prompt"', "JSON object"),
        (b'{"prompt": "x", "temperature": NaN}', "NaN"),
        (b'{"prompt": "x", "temperature": Infinity}', "Infinity"),
        (b"[" * 100_000 + b"]" * 100_000, "nested"),
    ],
)
def test_unparseable_input(data: bytes, needle: str) -> None:
    assert needle in spec_error(data).message


def test_duplicate_keys_are_rejected() -> None:
    error = spec_error(b'{"prompt": "a", "prompt": "b"}')
    assert error.field == "prompt"


def test_oversized_spec_is_rejected_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_EXEC_MAX_SPEC_BYTES", "100")
    assert "limit is 100 bytes" in spec_error(json.dumps({"prompt": "x" * 200}).encode()).message


def test_prompt_rendered_from_task_fields() -> None:
    task = {
        "title": "Add caching",
        "description": "Cache the results.",
        "deliverables": ["cache.py", "tests"],
        "success_criteria": ["hit rate > 90%"],
    }
    assert render_task_prompt(task) == (
        "# Add caching\n\nCache the results.\n\n## Deliverables\n- cache.py\n- tests"
        "\n\n## Success criteria\n- hit rate > 90%"
    )
    request = parse(task).to_request("m")
    assert [m.role for m in request.messages] == ["user"]
    assert request.messages[0].content == render_task_prompt(task)


def test_messages_system_and_prompt_compose_in_order() -> None:
    spec = parse({
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
        "prompt": "And now?",
        "description": "not used when messages are given",
    })
    request = spec.to_request("default-model")
    assert [(m.role, m.content) for m in request.messages] == [
        ("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello"), ("user", "And now?"),
    ]
    assert request.model == "default-model"
    assert request.max_tokens == 4000
    system, turns = request.split_system()
    assert system == "Be brief." and len(turns) == 3


def test_defaults_and_overrides() -> None:
    spec = parse({"prompt": "x", "model": "m1", "max_tokens": 7, "stop": ["END"], "seed": 3,
                  "timeout_seconds": 2.5, "max_retries": 0, "metadata": {"k": [1]}})
    request = spec.to_request("ignored")
    assert (request.model, request.max_tokens, request.stop, request.seed) == ("m1", 7, ("END",), 3)
    assert spec.timeout_seconds == 2.5 and spec.max_retries == 0
    assert spec.metadata == {"k": [1]}
    assert parse({"prompt": "x"}).timeout_seconds == 600


def test_an_unknown_field_suggests_the_close_one() -> None:
    with pytest.raises(TaskSpecError) as info:
        parse({"promt": "x"})
    assert info.value.field == "promt"
    assert "unknown field 'promt' (did you mean 'prompt'?)" in info.value.message
    with pytest.raises(TaskSpecError) as far:
        parse({"prompt": "x", "zzzz": 1})
    assert "did you mean" not in far.value.message
