"""(4) llm-route decision + spawn overhead over calling the executor directly: scripts/bench_route.py,
run with the harness's environment (no warm daemon, state and caches in a temporary directory)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import ROOT, executor_env, log

SCRIPT = ROOT / "scripts" / "bench_route.py"


def available() -> bool:
    return SCRIPT.exists()


def run(runs: int, executors: str = "llama,gpt") -> dict[str, Any]:
    log(f"route overhead: scripts/bench_route.py --runs {runs} --executors {executors}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "route.json"
        # bench_route starts its own emulator; the URL here only fills the variables it overrides.
        env = executor_env("http://127.0.0.1:9", Path(tmp))
        subprocess.run([sys.executable, str(SCRIPT), "--runs", str(runs), "--executors",
                        executors, "--json", str(out)], env=env, check=True, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())
