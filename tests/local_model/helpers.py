"""Running llm-exec-llama against the tier's server: task specs and the result contract."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.conftest import BIN_DIR, Run, result_validator, subprocess_env
from tests.local_model.llama_server import MODEL_ALIAS, LlamaServer


def local_task(server: LlamaServer, prompt: str, **fields: Any) -> dict[str, Any]:
    """A task for llm-exec-llama in OpenAI-compatible mode, pointed at `server` by spec fields.

    Greedy decoding (temperature 0) keeps the base model's continuations repeatable; max_tokens is
    always sent, as an unbounded request runs to the end of the context (~60 s).
    """
    return {
        "task_id": "local-model",
        "prompt": prompt,
        "model": MODEL_ALIAS,
        "api_style": "openai",
        "api_endpoint": server.base_url,
        "max_tokens": 32,
        "temperature": 0,
        "seed": 7,
        **fields,
    }


def check_run(proc: subprocess.Popen[bytes], stdout: bytes, stderr: bytes, started: float) -> Run:
    """The contract run_executor checks, for an executor started with Popen."""
    text = stdout.decode("utf-8")
    assert "Traceback" not in text, text
    lines = [json.loads(line) for line in text.split("\n") if line.strip()]
    run = Run(proc.returncode, text, stderr.decode("utf-8", "replace"), lines, time.monotonic() - started)
    assert lines, f"no output; stderr:\n{run.stderr}"
    errors = sorted(result_validator().iter_errors(run.result), key=str)
    assert not errors, f"result does not match the schema: {errors[0].message}\n{run.result}"
    assert run.result["exit_code"] == proc.returncode, (run.result, run.stderr)
    for line in lines[:-1]:
        assert line.get("type") == "delta" and isinstance(line.get("text"), str), line
    return run


def spawn_llama(spec: dict[str, Any], tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    """llm-exec-llama started in the background, its task on stdin (from a file), stdout piped."""
    task_file = tmp_path / "task.json"
    task_file.write_text(json.dumps(spec))
    with task_file.open("rb") as stdin:
        return subprocess.Popen(
            [str(BIN_DIR / "llm-exec-llama"), *args],
            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env(),
        )
