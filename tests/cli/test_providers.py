"""`llm-exec providers`: every installed provider with its configuration, keys never shown, and a
broken plugin listed with its error without hiding the others."""

from __future__ import annotations

from llm_exec import __version__
from llm_exec.providers.registry import builtin_entries
from tests.cli.conftest import PLUGINS, run_tool

CANARY = "sk-canary-providers-0123456789abcdef"


def _builtin_key_vars() -> dict[str, str]:
    """One canary value in every key variable a built-in declares."""
    return {var: f"{CANARY}-{index}" for index, var in
            enumerate(dict.fromkeys(v for e in builtin_entries() for v in e.load().key_env_vars))}


def test_json_describes_every_builtin_from_its_declarations() -> None:
    keys = _builtin_key_vars()
    run = run_tool("providers", "--json", env=keys)
    assert run.code == 0, run.stderr
    listed = {row["name"]: row for row in run.json()["providers"]}
    for entry in builtin_entries():
        cls, row = entry.load(), listed[entry.name]
        serving = cls.for_options({})
        assert row["error"] is None
        assert (row["package"], row["version"], row["builtin"]) == ("llm-exec", __version__, True)
        assert row["provider_id"] == cls.name and row["default_model"] == cls.default_model
        assert row["agent_types"][0] == entry.name and set(cls.agent_types) <= set(row["agent_types"])
        assert row["executable"] == cls.executable and row["run"] == (cls.executable or
                                                                      f"llm-exec run --provider {entry.name}")
        assert row["key"]["env_vars"] == list(serving.key_env_vars)
        assert row["key"]["set"] == (serving.key_env_vars[0] if serving.key_env_vars else None)
        assert row["base_url"] == serving.default_base_url and row["base_url_error"] is None
    for value in keys.values():
        assert value not in run.stdout and value not in run.stderr


def test_key_unset_and_base_urls_in_force() -> None:
    # Two providers that need a key and read a base-URL variable: one given a valid URL, one a bad one.
    entry, other = [e for e in builtin_entries() if e.load().base_url_env_vars and e.load().requires_key][:2]
    good_var, bad_var = entry.load().base_url_env_vars[0], other.load().base_url_env_vars[0]
    run = run_tool("providers", "--json", env={good_var: "http://127.0.0.1:8765/v9", bad_var: "not a url"})
    assert run.code == 0, run.stderr
    listed = {row["name"]: row for row in run.json()["providers"]}
    assert listed[entry.name]["base_url"] == "http://127.0.0.1:8765/v9"
    assert listed[other.name]["base_url"] is None
    assert bad_var in listed[other.name]["base_url_error"] and "not a url" in listed[other.name]["base_url_error"]
    assert listed[entry.name]["key"]["set"] is None and listed[entry.name]["key"]["required"] is True

    text = run_tool("providers", env={bad_var: "not a url"})
    assert text.code == 0
    line = next(line for line in text.stdout.splitlines() if line.startswith(other.name + " "))
    assert "missing" in line and "INVALID" in line
    assert f"\n{other.name}: {listed[other.name]['base_url_error']}\n" in text.stdout  # the message, below


def test_text_table_shows_key_state_never_the_key() -> None:
    keys = _builtin_key_vars()
    run = run_tool("providers", env=keys)
    assert run.code == 0
    header, *lines = run.stdout.splitlines()
    assert header.split()[:3] == ["name", "package", "version"]
    for entry in builtin_entries():
        line = next(line for line in lines if line.startswith(entry.name + " "))
        cls = entry.load().for_options({})
        if cls.key_env_vars:
            assert f"set ({cls.key_env_vars[0]})" in line
        assert entry.load().default_model in line
    assert not any(value in run.stdout + run.stderr for value in keys.values())


def test_broken_plugins_are_listed_with_their_error_and_exit_2(plugin_path: dict[str, str]) -> None:
    run = run_tool("providers", "--json", env={**plugin_path, "ZZ_WORKING_API_KEY": CANARY})
    assert run.code == 2
    listed = {row["name"]: row for row in run.json()["providers"]}
    assert {entry.name for entry in builtin_entries()} <= set(listed)  # the others are all there

    failing = listed["zz-import-fails"]
    assert failing["package"] == PLUGINS["zz-import-fails"][0] and failing["version"] == "0.3.1"
    assert "cannot be imported: ImportError" in failing["error"] and "some_missing_sdk" in failing["error"]
    assert "llm-exec-zz-import-fails" in failing["error"]
    wrong = listed["zz-not-a-provider"]
    assert "is not a llm_exec BaseLlm subclass" in wrong["error"] and "llm-exec-zz-not-a-provider" in wrong["error"]
    for name in ("zz-import-fails", "zz-not-a-provider"):
        assert listed[name]["error"] in run.stderr

    working = listed["zz-working"]
    assert working["error"] is None and working["builtin"] is False
    assert working["run"] == "llm-exec run --provider zz-working" and working["executable"] is None
    assert working["key"]["set"] == "ZZ_WORKING_API_KEY" and working["base_url"] == "http://127.0.0.1:9/zz"
    assert working["agent_types"] == ["zz-working", "zz-agent"] and working["default_model"] == "zz-model-1"
    assert CANARY not in run.stdout + run.stderr

    text = run_tool("providers", env=plugin_path)
    assert text.code == 2
    lines = text.stdout.splitlines()
    assert any(line.startswith("zz-import-fails ") and "ERROR: " in line for line in lines)
    assert any(line.startswith("zz-working ") and "llm-exec run --provider zz-working" in line for line in lines)
    assert all(any(line.startswith(entry.name + " ") for line in lines) for entry in builtin_entries())
