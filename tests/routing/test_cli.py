"""`llm-route agents`, flags and the failure contract of the command itself."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .conftest import ROUTE, route_env, run_route

REGISTRY = """
version: 1
default_agent: claude
agents:
  - {name: claude, type: anthropic-claude, model: claude-sonnet-4-6, capabilities: [code, design]}
  - {name: gpt, type: openai-gpt, capabilities: [testing], api_key_env: MY_OPENAI_KEY}
  - {name: local, type: meta-llama, model: llama3.2, price_per_mtok: {input: 0, output: 0}}
  - {name: service, type: custom, enabled: false}
"""


def agents(tmp_path: Path, registry: Path, *args: str, env: dict[str, str | None] | None = None
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ROUTE, "agents", "--registry", str(registry), *args], capture_output=True, text=True,
                          env=route_env(None, tmp_path, env), timeout=60, check=False)


def test_agents_lists_models_prices_and_keys(write_registry: Callable[..., Path], tmp_path: Path) -> None:
    registry = write_registry(REGISTRY)
    proc = agents(tmp_path, registry, "--json", env={"ANTHROPIC_API_KEY": "sk-ant-test-0123456789"})
    assert proc.returncode == 0, proc.stderr
    listing = json.loads(proc.stdout)
    rows = {row["name"]: row for row in listing["agents"]}
    assert list(rows) == ["claude", "gpt", "local", "service"]
    assert rows["claude"]["price_per_mtok"] == {"input": 3.0, "output": 15.0, "source": "genai-prices"}
    assert rows["claude"]["key"]["present"] is True and rows["claude"]["default"] is True
    assert rows["claude"]["capabilities"] == ["code", "design"]
    # No model in the registry: the executor's default, priced by genai-prices.
    assert rows["gpt"]["model"] == "gpt-5.4-mini" and rows["gpt"]["price_per_mtok"]["input"] > 0
    assert rows["gpt"]["key"] == {"present": False, "variables": ["MY_OPENAI_KEY"], "status": "missing (MY_OPENAI_KEY)"}
    assert rows["local"]["price_per_mtok"] == {"input": 0.0, "output": 0.0, "source": "registry"}
    assert rows["local"]["key"]["present"] is None  # Ollama needs no key
    assert rows["service"]["price_per_mtok"] is None and rows["service"]["enabled"] is False
    assert "sk-ant-test" not in proc.stdout

    table = agents(tmp_path, registry, env={"MY_OPENAI_KEY": "sk-test-0123456789"})
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "MODEL", "ON", "CAPABILITIES", "IN/1M", "OUT/1M", "KEY"]
    claude = next(line for line in lines if line.startswith("claude"))
    assert "$3" in claude and "$15" in claude and "missing (ANTHROPIC_API_KEY)" in claude
    assert "set (MY_OPENAI_KEY)" in next(line for line in lines if line.startswith("gpt"))
    # The group's --registry works for the subcommand too.
    proc = subprocess.run([ROUTE, "--registry", str(registry), "agents", "--json"], capture_output=True, text=True,
                          env=route_env(None, tmp_path), timeout=60, check=False)
    assert proc.returncode == 0 and len(json.loads(proc.stdout)["agents"]) == 4


def test_agents_with_a_broken_registry_is_exit_2(write_registry: Callable[..., Path], tmp_path: Path) -> None:
    proc = agents(tmp_path, write_registry("version: 1\nagents:\n  - {name: x, type: bard}\n"))
    assert proc.returncode == 2
    result = json.loads(proc.stdout)
    assert result["error"]["type"] == "invalid_registry" and "line 3: agents[0].type" in result["error"]["message"]


def test_bad_flag_still_writes_a_result(tmp_path: Path) -> None:
    run = run_route({"prompt": "hi"}, registry=None, tmp_path=tmp_path, args=("--consensus", "1"))
    assert run.code == 2 and run.result["error"]["type"] == "usage_error"
    assert run.result["error"]["field"] == "consensus"


def test_bad_task_spec_is_exit_3(write_registry: Callable[..., Path], tmp_path: Path) -> None:
    registry = write_registry(REGISTRY)
    run = run_route(b"{not json", registry=registry, tmp_path=tmp_path)
    assert run.code == 3 and run.result["error"]["type"] == "task_spec_error"
    run = run_route({"prompt": "hi", "required_capabilities": ["juggling"]}, registry=registry, tmp_path=tmp_path)
    assert run.code == 3 and run.result["error"]["field"] == "required_capabilities[0]"


def test_schema_and_version_flags(tmp_path: Path) -> None:
    proc = subprocess.run([ROUTE, "--schema", "registry"], capture_output=True, text=True,
                          env=route_env(None, tmp_path), timeout=60, check=False)
    assert proc.returncode == 0 and json.loads(proc.stdout)["title"] == "llm-exec agent registry"
    proc = subprocess.run([ROUTE, "--version"], capture_output=True, text=True, env=route_env(None, tmp_path),
                          timeout=60, check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("llm-route ")


def test_route_imports_no_provider_sdk(write_registry: Callable[..., Path], tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.argv = ['llm-route', '--explain', '--registry', sys.argv[1]]\n"
        "from llm_exec.cli.route import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'anthropic', 'openai', 'google', 'httpx'}),"
        " file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(write_registry(REGISTRY))], input=b'{"prompt": "hi"}',
                          capture_output=True, env=route_env(None, tmp_path), timeout=60, check=False)
    assert json.loads(proc.stdout)["chosen"] == "local"  # cheapest first: stated at $0
    assert proc.stderr.decode().strip().splitlines()[-1] == "[]", proc.stderr.decode()


def test_signal_while_reading_the_task_cancels_with_a_result(
    write_registry: Callable[..., Path], tmp_path: Path
) -> None:
    proc = subprocess.Popen([ROUTE, "--registry", str(write_registry(REGISTRY))], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=route_env(None, tmp_path))
    time.sleep(1.5)  # started and blocked reading stdin, which never ends
    proc.send_signal(signal.SIGTERM)
    stdout, _ = proc.communicate(timeout=20)
    result = json.loads(stdout)
    assert proc.returncode == 1 == result["exit_code"]
    assert result["status"] == "cancelled" and result["error"]["message"] == "cancelled by SIGTERM"


def test_the_fast_flag_reader_agrees_with_click(tmp_path: Path) -> None:
    from llm_exec.cli.route import cli, fast_options
    from llm_exec.routing.router import PROGRAM, RouteOptions

    existing = tmp_path / "registry.yaml"
    existing.write_text("version: 1\n")
    missing = str(tmp_path / "missing.yaml")
    read_fast = [
        [], ["--explain"], ["--registry", str(existing)], [f"--registry={existing}"], ["--registry", missing],
        ["--consensus", "2"], ["--consensus=3"], ["--consensus", "02"], ["--input", "-"], ["--input", missing],
        ["--output", str(existing)], ["--stream", "--pretty", "--explain", "--stream"],
        ["--registry", missing, "--registry", str(existing), "--input", str(existing)],
    ]
    for args in read_fast:
        options = fast_options(list(args))
        assert options is not None, args
        params = cli.make_context(PROGRAM, list(args)).params
        assert options == RouteOptions(**params), args
    # Everything else is click's to read (and to reject, with its own message and exit 2).
    for args in (["--consensus", "1"], ["--consensus", "x"], ["--consensus", "+3"], ["--consensus", "٣"],
                 ["--registry"], ["--registry", str(tmp_path)], ["--registry="], ["--registry", "-x"],
                 ["--output", "-"], ["--explain=1"], ["--help"], ["-h"], ["--version"], ["--schema", "task"],
                 ["agents"], ["--explain", "agents"], ["--bogus"], ["--", "--explain"], ["--expl"]):
        assert fast_options(list(args)) is None, args


def test_a_directory_as_registry_is_click_s_usage_error(tmp_path: Path) -> None:
    run = run_route({"prompt": "hi"}, registry=tmp_path, tmp_path=tmp_path, args=("--explain",))
    assert run.code == 2 and run.result["error"]["type"] == "usage_error"
    assert run.result["error"]["field"] == "registry_path" and "is a directory" in run.result["error"]["message"]
