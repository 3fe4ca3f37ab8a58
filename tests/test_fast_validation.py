"""The compiled fast check in task.py lets a spec through without jsonschema only when jsonschema
would too: it agrees with jsonschema on valid specs, near-valid ones and junk alike."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from llm_exec.schema_check import compile_schema
from llm_exec.task import fast_check, load_schema

SCHEMA = load_schema("task")
PROPERTIES: dict[str, Any] = SCHEMA["properties"]
JSONSCHEMA = Draft202012Validator(SCHEMA)

scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(-3, 3, allow_nan=False) | st.text(max_size=6)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


def valid_value(name: str) -> st.SearchStrategy[Any]:
    """Values the schema accepts for a field."""
    prop = PROPERTIES[name]
    if "enum" in prop:
        return st.sampled_from(prop["enum"])
    if name == "api_key_env":
        return st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}\n?", fullmatch=True)
    kind = prop.get("type")
    if kind == "string":
        return st.text(min_size=prop.get("minLength", 0), max_size=12)
    if kind in ("integer", "number"):
        low = prop.get("minimum", prop.get("exclusiveMinimum", -5) + 1)
        high = prop.get("maximum", 50)
        whole = st.integers(low, high)
        return whole | whole.map(float) if kind == "integer" else whole | st.floats(low, high, allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        items = prop.get("items", {})
        if name == "messages":
            item = st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "assistant"]),
                                          "content": st.text(max_size=5)})
        else:
            item = st.sampled_from(items["enum"]) if "enum" in items else st.text(min_size=1, max_size=5)
        return st.lists(item, min_size=prop.get("minItems", 0), max_size=3, unique=bool(prop.get("uniqueItems")))
    if kind == "object":
        if name == "custom":
            return st.fixed_dictionaries({}, optional={"output_path": st.text(min_size=1, max_size=4),
                                                       "request_template": st.dictionaries(st.text(max_size=3), scalars,
                                                                                           max_size=2)})
        return st.dictionaries(st.text(max_size=5), values, max_size=3)
    return values


def near_miss(name: str) -> st.SearchStrategy[Any]:
    """Values of the wrong type, past a bound, with a bad item or key, or an integral float."""
    prop = PROPERTIES[name]
    options = [scalars, st.sampled_from([-1, 0, 2.0, 2.5, 1e9, True, "", [], {}]), st.lists(scalars, max_size=3)]
    if name == "messages":
        options.append(st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "tool", 1]),
                                                       "content": st.text(max_size=3) | st.integers()},
                                                      optional={"extra": st.integers()}), max_size=3))
    if prop.get("type") == "array" and "enum" in prop.get("items", {}):
        options.append(st.lists(st.sampled_from(prop["items"]["enum"]), min_size=2, max_size=3))  # duplicates
    if name == "custom":
        options.append(st.dictionaries(st.sampled_from(["output_path", "nope"]), st.text(max_size=2), max_size=2))
    return st.one_of(options)


FIELDS = sorted(PROPERTIES)
valid_specs = st.sets(st.sampled_from(FIELDS), max_size=6).flatmap(
    lambda keys: st.fixed_dictionaries({"prompt": st.text(max_size=5), **{k: valid_value(k) for k in keys}}))
near_specs = st.tuples(valid_specs, st.sampled_from([*FIELDS, "bogus"]), st.data()).map(
    lambda args: {**args[0], args[1]: args[2].draw(values if args[1] == "bogus" else near_miss(args[1]))})
anything = st.dictionaries(st.sampled_from([*FIELDS, "bogus"]), values, max_size=4) | values


@settings(max_examples=600, deadline=None, derandomize=True)
@given(valid_specs | near_specs | anything)
def test_fast_check_agrees_with_jsonschema(instance: Any) -> None:
    check = fast_check("task")
    assert check is not None
    assert check(instance) == JSONSCHEMA.is_valid(instance), instance


@settings(max_examples=300, deadline=None, derandomize=True)
@given(valid_specs)
def test_valid_specs_take_the_fast_path(instance: Any) -> None:
    assert JSONSCHEMA.is_valid(instance)
    assert fast_check("task")(instance)  # type: ignore[misc]


def test_schemas_with_other_keywords_are_left_to_jsonschema() -> None:
    assert compile_schema({"type": "object", "not": {"required": ["x"]}}) is None  # `not`: not compiled
    assert compile_schema({"type": "array", "uniqueItems": False}) is None
    # One compiler serves both schemas: the registry's $ref, const and propertyNames compile too.
    assert fast_check("registry") is not None


def test_a_valid_spec_does_not_import_jsonschema() -> None:
    code = ("import sys; from llm_exec.task import parse_task; parse_task(b'{\"prompt\": \"hi\", \"max_tokens\": 5}'); "
            "print('jsonschema' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
