"""Model aliases (aliases.yaml) and deprecation warnings, through the real executables against the
emulator: what is sent, what the result says, and every way a bad alias file is reported."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from llm_exec.emulator import Emulator
from llm_exec.providers.anthropic import sdk_deprecations

from .conftest import BIN_DIR, run_executor

ALIASES = """\
aliases:
  fast: gpt:gpt-5.4-mini
  plain: gpt-5.4-nano
  legacy:
    model: gpt:gpt-4o
    deprecated: {end_of_life: 2020-01-31, replacement: fast}
deprecated:
  gpt-4.1: {end_of_life: 2999-03-01, replacement: gpt-5.4-mini}
"""


@pytest.fixture
def alias_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "config"
    (config / "llm-exec").mkdir(parents=True)
    path = config / "llm-exec" / "aliases.yaml"
    path.write_text(ALIASES)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    return path


def sent_models(emulator: Emulator) -> list[str]:
    return [request["body"]["model"] for request in emulator.requests()]


def test_an_alias_sends_its_model_and_the_result_shows_both(alias_file: Path, emulator: Emulator) -> None:
    run = run_executor("gpt", {"prompt": "hi", "model": "fast"}, url=emulator.url)
    assert run.code == 0, run.stderr
    assert run.result["model"] == "gpt-5.4-mini" and run.result["model_alias"] == "fast"
    assert sent_models(emulator) == ["gpt-5.4-mini"]
    assert "warnings" not in run.result


def test_an_alias_without_a_provider_serves_any_executor(alias_file: Path, emulator: Emulator) -> None:
    run = run_executor("gpt", {"prompt": "hi", "model": "plain"}, url=emulator.url)
    assert run.code == 0 and run.result["model"] == "gpt-5.4-nano"


def test_a_model_that_is_no_alias_is_sent_as_it_is(alias_file: Path, emulator: Emulator) -> None:
    run = run_executor("gpt", {"prompt": "hi", "model": "gpt-5.4"}, url=emulator.url)
    assert run.code == 0 and run.result["model"] == "gpt-5.4" and "model_alias" not in run.result


def test_an_alias_for_another_provider_is_a_configuration_error(alias_file: Path, emulator: Emulator) -> None:
    run = run_executor("claude", {"prompt": "hi", "model": "fast"}, url=emulator.url)
    assert run.code == 2 and run.result["error"]["type"] == "alias_provider_mismatch"
    assert run.result["error"]["field"] == "model" and f"{alias_file}:2" in run.result["error"]["message"]
    assert emulator.requests() == []


def test_llm_exec_run_takes_the_provider_from_the_alias(alias_file: Path, emulator: Emulator) -> None:
    run = run_executor("gpt", {"prompt": "hi", "model": "fast"}, url=emulator.url,
                       command=(str(BIN_DIR / "llm-exec"), "run"))
    assert run.code == 0 and run.result["provider"] == "openai" and run.result["model"] == "gpt-5.4-mini"


def test_a_deprecated_alias_warns_and_says_retired_past_its_date(alias_file: Path, emulator: Emulator) -> None:
    run = run_executor("gpt", {"prompt": "hi", "model": "legacy"}, url=emulator.url)
    assert run.code == 0, "past the end of life the call still goes out: the provider decides"
    assert sent_models(emulator) == ["gpt-4o"]
    [warning] = run.result["warnings"]
    assert warning == {"type": "model_deprecated", "model": "gpt-4o", "end_of_life": "2020-01-31",
                       "replacement": "fast", "retired": True, "source": f"{alias_file}:4",
                       "message": "model gpt-4o is retired since 2020-01-31; use fast instead"}
    assert run.stderr.count("warning:") == 1 and "gpt-4o is retired" in run.stderr
    assert len(run.lines) == 1, "stdout stays one JSON result"


def test_a_deprecated_entry_warns_for_the_model_itself(alias_file: Path, emulator: Emulator) -> None:
    run = run_executor("gpt", {"prompt": "hi", "model": "gpt-4.1"}, url=emulator.url, args=("--stream",))
    [warning] = run.result["warnings"]
    assert (warning["end_of_life"], warning["replacement"], warning["retired"]) == ("2999-03-01", "gpt-5.4-mini",
                                                                                    False)


def test_the_anthropic_sdks_own_deprecation_table_warns(emulator: Emulator) -> None:
    table = sdk_deprecations()
    assert table, "the installed anthropic SDK lists deprecated models (anthropic/_data/deprecated_models.py)"
    model, (end_of_life, _) = next(iter(table.items()))
    run = run_executor("claude", {"prompt": "hi", "model": model}, url=emulator.url)
    assert run.code == 0
    [warning] = run.result["warnings"]
    assert warning["model"] == model and warning["end_of_life"] == end_of_life
    assert warning["source"] == "provider:anthropic"


def test_genai_prices_deprecation_flag_warns(emulator: Emulator) -> None:
    from genai_prices.data_snapshot import get_snapshot

    google = next(p for p in get_snapshot().providers if p.id == "google")
    model = next(m.id for m in google.models if m.deprecated and not m.id.endswith("-image"))
    for _ in range(2):  # the first run prices the model with genai-prices, the second from the rate card
        run = run_executor("gemini", {"prompt": "hi", "model": model}, url=emulator.url)
        assert run.code == 0
        assert [w["source"] for w in run.result["warnings"]] == ["genai-prices"]


def test_a_current_model_has_no_warning(emulator: Emulator) -> None:
    run = run_executor("claude", {"prompt": "hi"}, url=emulator.url)
    assert run.code == 0 and "warnings" not in run.result and "warning:" not in run.stderr


@pytest.mark.parametrize(("text", "where"), [
    ("aliases:\n  fast: [gpt]\n", "line 2: aliases.fast: must be PROVIDER:MODEL"),
    ('aliases:\n  fast: "gpt:"\n', "line 2: aliases.fast: 'gpt:' must be PROVIDER:MODEL or MODEL"),
    ("aliasses:\n  fast: gpt:x\n", "line 1: aliasses: unknown field 'aliasses'"),
    ("aliases:\n  fast: {model: gpt:x, deprecated: {end_of_life: soon}}\n",
     "line 2: aliases.fast.deprecated: end_of_life 'soon' is not a YYYY-MM-DD date"),
    ("deprecated:\n  gpt-4o: {eol: 2026-01-01}\n", "line 2: deprecated.gpt-4o: unknown field 'eol'"),
    ("aliases:\n  fast: gpt:x\n  fast: gpt:y\n", "line 3: aliases.fast: duplicate key 'fast' (first on line 2)"),
    ("aliases: {fast: gpt:x\n", "not valid YAML"),
])
def test_a_bad_alias_file_is_exit_2_with_file_and_line(tmp_path: Path, emulator: Emulator, text: str,
                                                       where: str) -> None:
    path = tmp_path / "aliases.yaml"
    path.write_text(textwrap.dedent(text))
    run = run_executor("gpt", {"prompt": "hi", "model": "fast"}, url=emulator.url, env={"LLM_EXEC_ALIASES": str(path)})
    assert run.code == 2 and run.result["error"]["type"] == "invalid_aliases", run.result
    assert str(path) in run.result["error"]["message"] and where in run.result["error"]["message"]
    assert emulator.requests() == []


def test_a_named_alias_file_that_is_missing_is_exit_2(tmp_path: Path, emulator: Emulator) -> None:
    run = run_executor("gpt", {"prompt": "hi"}, url=emulator.url, env={"LLM_EXEC_ALIASES": str(tmp_path / "no.yaml")})
    assert run.code == 2 and run.result["error"]["field"] == "LLM_EXEC_ALIASES"
