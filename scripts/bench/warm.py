"""(7) The warm path: one call through llm-exec-daemon next to the same call in-process, by the daemon's
own benchmark (scripts/bench_daemon.py), run with the harness's settings."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import ROOT, executor_env, log

SCRIPT = ROOT / "scripts" / "bench_daemon.py"


def available() -> bool:
    return SCRIPT.exists()


def run(runs: int) -> dict[str, Any]:
    log(f"warm path: scripts/bench_daemon.py --runs {runs}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "daemon.json"
        # bench_daemon starts its own emulator and daemon; the URL here only fills the variables it overrides.
        env = executor_env("http://127.0.0.1:9", Path(tmp))
        subprocess.run([sys.executable, str(SCRIPT), "--runs", str(runs), "--json", str(out)], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())
