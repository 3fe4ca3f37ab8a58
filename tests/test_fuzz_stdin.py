"""Bad input never crashes and never hangs: property-based tests over what arrives on stdin.

Every generated case must give exit 3 and exactly one valid result object naming the field at
fault where there is one, with no traceback anywhere. The hypothesis cases run through the
executor's runner in-process (600+ cases in a few seconds); the extreme inputs below also run
through real subprocesses, where time and peak memory are measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_exec.runner import RunOptions, run
from llm_exec.task import load_schema

from .conftest import BIN_DIR, result_validator, run_executor, subprocess_env

CASES = 150  # per strategy; four strategies -> 600 generated cases in CI
FUZZ = settings(max_examples=CASES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)

# The JSON kinds each top-level field accepts (from the schema), to generate values it rejects.
_KIND_OF = {"string": str, "integer": int, "number": float, "boolean": bool, "array": list, "object": dict}


def _accepted_kinds(prop: dict[str, Any]) -> set[str]:
    if "enum" in prop:
        return {"enum"}
    kinds = prop.get("type")
    kinds = {kinds} if isinstance(kinds, str) else set(kinds or [])
    if "integer" in kinds:
        kinds.add("number-integral")
    return kinds


def _wrong_value(prop: dict[str, Any]) -> st.SearchStrategy[Any]:
    kinds = _accepted_kinds(prop)
    options = []
    if "string" not in kinds:
        options.append(st.text(max_size=10))
    if not kinds & {"number", "integer", "number-integral"}:
        options.append(st.integers())
    if "integer" in kinds and "number" not in kinds:
        options.append(st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer()))
    if "boolean" not in kinds:
        options.append(st.booleans())
    if "array" not in kinds:
        options.append(st.lists(st.integers(), max_size=3))
    if "object" not in kinds:
        options.append(st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
    if "enum" in kinds:
        options.append(st.text(max_size=10).filter(lambda v: v not in prop["enum"]))
    return st.one_of(options)


TASK_PROPERTIES: dict[str, dict[str, Any]] = load_schema("task")["properties"]


@st.composite
def wrong_type_specs(draw: st.DrawFn) -> tuple[bytes, str | None]:
    name = draw(st.sampled_from(sorted(TASK_PROPERTIES)))
    spec = {"prompt": "hello", name: draw(_wrong_value(TASK_PROPERTIES[name]))}
    return json.dumps(spec).encode(), name


@st.composite
def unknown_field_specs(draw: st.DrawFn) -> tuple[bytes, str | None]:
    name = draw(st.text(min_size=1, max_size=12).filter(lambda n: n not in TASK_PROPERTIES))
    return json.dumps({"prompt": "hello", name: draw(json_values)}).encode(), name


@st.composite
def non_object_json(draw: st.DrawFn) -> tuple[bytes, str | None]:
    value = draw(json_values.filter(lambda v: not isinstance(v, dict)))
    return json.dumps(value).encode(), None


@st.composite
def garbage_bytes(draw: st.DrawFn) -> tuple[bytes, str | None]:
    kind = draw(st.sampled_from(["random", "invalid-utf8", "nan", "duplicate", "truncated"]))
    if kind == "random":
        data = draw(st.binary(max_size=200))
        if data.strip().startswith(b"{") and data.strip().endswith(b"}"):
            data = b"\xff" + data  # keep it invalid
        return data, None
    if kind == "invalid-utf8":
        bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88"]))
        return b'{"prompt": "' + bad + b'"}', None
    if kind == "nan":
        constant = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity"]))
        return b'{"prompt": "x", "temperature": ' + constant + b"}", None
    if kind == "duplicate":
        name = draw(st.sampled_from(sorted(TASK_PROPERTIES)))
        return f'{{"prompt": "x", "{name}": 1, "{name}": 2}}'.encode(), name
    spec = json.dumps({"prompt": draw(st.text(max_size=30)), "max_tokens": 5}).encode()
    return spec[: draw(st.integers(min_value=0, max_value=len(spec) - 1))], None


def check_rejected(data: bytes, field: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, sink = tmp_path / "in.json", tmp_path / "out.json"
    source.write_bytes(data)
    code = run(RunOptions(executor="gpt", program="llm-exec-gpt", input_path=str(source), output_path=str(sink)))
    lines = sink.read_bytes().decode("utf-8").splitlines()
    assert len(lines) == 1, lines
    result = json.loads(lines[0])
    assert not list(result_validator().iter_errors(result)), result
    assert code == 3 == result["exit_code"], (data[:200], result)
    assert result["error"]["type"] == "task_spec_error"
    if field is not None:
        assert result["error"]["field"] == field, (data[:200], result["error"])
    assert "Traceback" not in capsys.readouterr().err


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    # Should a case ever pass validation, it must fail fast instead of reaching a network.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fuzz-0123456789")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")


@FUZZ
@given(case=wrong_type_specs())
def test_wrong_type_for_every_field(case: tuple[bytes, str | None], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    check_rejected(*case, tmp_path, capsys)


@FUZZ
@given(case=unknown_field_specs())
def test_unknown_fields(case: tuple[bytes, str | None], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check_rejected(*case, tmp_path, capsys)


@FUZZ
@given(case=non_object_json())
def test_json_that_is_not_an_object(case: tuple[bytes, str | None], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    check_rejected(*case, tmp_path, capsys)


@FUZZ
@given(case=garbage_bytes())
def test_bytes_that_are_not_a_spec(case: tuple[bytes, str | None], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    check_rejected(*case, tmp_path, capsys)


EXTREME = {
    "empty": b"",
    "whitespace": b" \n\t ",
    "invalid-utf8": b'{"prompt": "\xff\xfe"}',
    "nested-10000": b"[" * 10_000 + b"]" * 10_000,
    "nested-10000-in-metadata": b'{"prompt": "x", "metadata": ' + b'{"a": ' * 10_000 + b"1" + b"}" * 10_001,
    "huge-string-50MB": b'{"prompt": "' + b"x" * (50 * 1024 * 1024) + b'"}',
    "many-items": json.dumps({"prompt": "x", "deliverables": ["a"] * 1_000_000}).encode(),
    "nan": b'{"prompt": "x", "temperature": NaN}',
    "duplicate-keys": b'{"prompt": "x", "prompt": "y"}',
    "lone-surrogate-escape": b'{"prompt": "x", "metadata": {"k": "\\ud800"}, "max_tokens": 0}',
}


@pytest.mark.parametrize("name", sorted(EXTREME))
def test_extreme_input_through_the_executor(name: str) -> None:
    run_ = run_executor("gpt", None, raw_input=EXTREME[name], env={"OPENAI_API_KEY": "sk-fuzz-0123456789"})
    assert run_.code == 3, run_.result
    assert len(run_.lines) == 1
    assert "Traceback" not in run_.stderr
    assert run_.elapsed < 10
    # Bounded memory, measured for this child alone (wait4): the 50 MB input is never held whole,
    # as reading stops one byte past the 10 MiB limit (~35 MB peak RSS here).
    assert peak_rss_mb(EXTREME[name]) < 200


# Linux carries a process's RSS high-water mark across fork and exec, so a child of the (large)
# pytest process would report pytest's size. A small intermediate process starts the executor and
# reports wait4's figure for it: that child is forked from a ~10 MB process, not from pytest.
_MEASURE = ("import os, subprocess, sys; child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, "
            "stderr=subprocess.DEVNULL); _, _, usage = os.wait4(child.pid, 0); print(usage.ru_maxrss)")


def peak_rss_mb(data: bytes) -> float:
    env = {**subprocess_env(), "OPENAI_API_KEY": "sk-fuzz-0123456789"}
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(BIN_DIR / "llm-exec-gpt")], input=data,
                         capture_output=True, env=env, check=True, timeout=60)
    return int(out.stdout) / 1024


def test_closed_stdout_gives_no_traceback() -> None:
    """A reader that goes away (`| head -c 10`) must not produce a traceback."""
    proc = subprocess.run(
        f"echo '{{\"prompt\": \"x\", \"bad\": 1}}' | {BIN_DIR / 'llm-exec-gpt'} --pretty | head -c 10",
        shell=True, capture_output=True, timeout=30, check=False,
    )
    assert proc.stdout.startswith(b"{")
    assert b"Traceback" not in proc.stderr
    assert b"BrokenPipe" not in proc.stderr
