"""Malformed registries are configuration errors (exit 2) naming the YAML line and the field."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from llm_exec.errors import ConfigurationError
from llm_exec.routing.registry import parse_registry

from .conftest import run_route

GOOD = """\
version: 1
default_agent: a
agents:
  - name: a
    type: meta-llama
    capabilities: [code]
  - name: b
    type: openai-gpt
    model: gpt-5.4-mini
"""


def error_of(text: str) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        parse_registry(textwrap.dedent(text), "reg.yaml")
    assert info.value.exit_code == 2 and info.value.type == "invalid_registry"
    return info.value


@pytest.mark.parametrize(
    ("text", "line", "field", "fragment"),
    [
        (GOOD.replace("type: openai-gpt", "type: openai"), 8, "agents[1].type",
         "unknown agent type 'openai' (did you mean 'openai-gpt'?)"),
        (GOOD.replace("[code]", "[code, cooking]"), 6, "agents[0].capabilities[1]", "'cooking' is not one of"),
        (GOOD.replace("name: b", "name: a"), 7, "agents[1].name", "duplicate agent name 'a'"),
        (GOOD.replace("model: gpt", "modle: gpt"), 9, "agents[1].modle", "unknown field 'modle'"),
        (GOOD.replace("  - name: b\n", "  - enabled: true\n"), 7, "agents[1]", "missing required field 'name'"),
        (GOOD.replace("default_agent: a", "default_agent: z"), 2, "default_agent", "'z' is not an agent"),
        (GOOD.replace("version: 1", "version: 2"), 1, "version", "1 was expected"),
        (GOOD + "    max_tokens: 0\n", 10, "agents[1].max_tokens", "less than the minimum of 1"),
        (GOOD + "    temperature: hot\n", 10, "agents[1].temperature", "'hot' is not of type"),
        (GOOD + "    price_per_mtok: {input: 1}\n", 10, "agents[1].price_per_mtok", "missing required field 'output'"),
        (GOOD + "    task_defaults: {api_style: grpc}\n", 10, "agents[1].task_defaults.api_style", "api_style"),
        (GOOD + "    task_defaults: {prompt: hi}\n", 10, "agents[1].task_defaults", "'prompt'"),
        (GOOD + "    api_key_env: 'not a var'\n", 10, "agents[1].api_key_env", "does not match"),
        (GOOD + "complexity_tiers: {tiny: ['*']}\n", 10, "complexity_tiers.tiny", "unknown field 'tiny'"),
        (GOOD + "    type: custom\n", 10, "agents[1].type", "duplicate key 'type' (first on line 8)"),
    ],
)
def test_schema_and_semantic_errors_name_line_and_field(text: str, line: int, field: str, fragment: str) -> None:
    error = error_of(text)
    assert f"line {line}: {field}: " in error.message, error.message
    assert fragment in error.message, error.message
    assert error.field == field


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("version: 1\nagents:\n  - name: a\n    type: [custom\n", "line 5: not valid YAML"),
        ("version: 1\nagents:\n  - name: a\n\ttype: custom\n", "line 4: not valid YAML"),
        ("", "the file is empty"),
        ("- a\n- b\n", "is not of type 'object'"),
        ("version: 1\nagents: []\n", "line 2: agents: [] should be non-empty"),
    ],
)
def test_unreadable_registries(text: str, fragment: str) -> None:
    assert fragment in error_of(text).message


def test_every_problem_is_listed_in_line_order() -> None:
    text = GOOD.replace("type: openai-gpt", "type: openai").replace("[code]", "[code, cooking]")
    message = error_of(text).message
    assert message.index("line 6: agents[0].capabilities[1]") < message.index("line 8: agents[1].type")


def test_yaml_1_1_booleans_stay_strings() -> None:
    # Under YAML 1.1 `off`/`no`/`on` are booleans: an agent called "no" would be a schema error.
    registry = parse_registry("version: 1\nagents:\n  - {name: no, type: custom, model: on, enabled: false}\n")
    agent = registry.agents[0]
    assert (agent.name, agent.model, agent.enabled) == ("no", "on", False)


def test_yaml_aliases_and_merge_keys_work() -> None:
    registry = parse_registry(textwrap.dedent("""\
        version: 1
        agents:
          - &first {name: a, type: openai-gpt, capabilities: [code], max_tokens: 100}
          - {<<: *first, name: b, model: gpt-5.4-mini}
    """))
    assert [(a.name, a.type, a.max_tokens, a.model) for a in registry.agents] == [
        ("a", "openai-gpt", 100, None), ("b", "openai-gpt", 100, "gpt-5.4-mini")]


def test_malformed_registry_through_llm_route(write_registry: Callable[..., Path], tmp_path: Path) -> None:
    path = write_registry(GOOD.replace("type: openai-gpt", "type: anthropic"))
    for args in ((), ("--explain",)):
        run = run_route({"prompt": "hi"}, registry=path, tmp_path=tmp_path, args=args)
        assert run.code == 2
        error = run.result["error"]
        assert error["type"] == "invalid_registry" and error["field"] == "agents[1].type"
        assert f"{path}: line 8: agents[1].type: unknown agent type 'anthropic'" in error["message"]
        assert "line 8" in run.stderr
        assert "route" not in run.result  # no decision was made


def test_missing_registry_file(tmp_path: Path) -> None:
    run = run_route({"prompt": "hi"}, registry=tmp_path / "nope.yaml", tmp_path=tmp_path)
    assert run.code == 2 and run.result["error"]["type"] == "registry_not_found"
    assert "nope.yaml" in run.result["error"]["message"]


def test_the_example_registry_is_valid() -> None:
    path = Path(__file__).resolve().parents[2] / "examples" / "registry.yaml"
    registry = parse_registry(path.read_bytes(), str(path))
    assert {agent.type for agent in registry.agents} == {
        "anthropic-claude", "openai-gpt", "google-gemini", "meta-llama", "custom"}
    assert registry.get(registry.default_agent or "") is not None


def test_registry_schema_is_valid_draft_2020_12() -> None:
    from jsonschema import Draft202012Validator

    from llm_exec.task import load_schema

    Draft202012Validator.check_schema(load_schema("registry"))


def test_schema_and_semantic_problems_are_reported_in_one_run() -> None:
    text = GOOD.replace("default_agent: a", "default_agent: nobody").replace("name: b", "name: a")
    text = text.replace("[code]", "[code, cooking]").replace("type: openai-gpt", "type: opnai-gpt")
    message = error_of(text).message
    assert "line 2: default_agent: default_agent 'nobody' is not an agent" in message
    assert "line 6: agents[0].capabilities[1]: 'cooking' is not one of" in message
    assert "line 7: agents[1].name: duplicate agent name 'a'" in message
    assert "line 8: agents[1].type: unknown agent type 'opnai-gpt' (did you mean 'openai-gpt'?)" in message
    # In file order, so the first line to fix comes first.
    assert message.index("line 2:") < message.index("line 6:") < message.index("line 7:") < message.index("line 8:")


def test_a_provider_name_is_an_agent_type() -> None:
    registry = parse_registry(GOOD.replace("type: openai-gpt", "type: gpt"), "reg.yaml")
    assert [agent.executor for agent in registry.agents] == ["llama", "gpt"]


def test_an_unknown_registry_key_suggests_the_close_one() -> None:
    message = error_of(GOOD.replace("capabilities: [code]", "capabilites: [code]")).message
    assert "agents[0].capabilites: unknown field 'capabilites' (did you mean 'capabilities'?)" in message
