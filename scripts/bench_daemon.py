#!/usr/bin/env python3
"""Warm-path benchmark: wall time of one executor call served by llm-exec-daemon, next to the same
call run in-process (LLM_EXEC_DAEMON=off) and to `python -c pass`.

Starts the bundled emulator and a daemon on a private socket. For every executor, --runs rounds,
each timing the three commands back to back (so load from other processes hits all three alike);
reports the medians. Every call is a real one to the emulator. The goal (issue 7): <= 50 ms per
call through the daemon, <= 4 x `python -c pass`.

llm_exec's bytecode is compiled first, as installing a wheel does: with PYTHONDONTWRITEBYTECODE
set and an editable install, every executor would otherwise compile our modules on each start.

Usage: python scripts/bench_daemon.py [--runs 20] [--executors claude,gpt] [--json bench-daemon.json]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import llm_exec
from llm_exec.daemon.lifecycle import answering_pid
from llm_exec.emulator import Emulator
from llm_exec.emulator.env import client_env
from llm_exec.providers.registry import BUILTIN

BIN = Path(sys.executable).parent
TASK = json.dumps({"task_id": "bench", "prompt": "Say hello", "max_tokens": 20}).encode()
GOAL_MS = 50.0
GOAL_RATIO = 4.0


def elapsed_ms(argv: list[str], env: dict[str, str], stdin: bytes | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, input=stdin, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited with {done.returncode}:\n{done.stderr.decode(errors='replace')}")
    return elapsed


def start_daemon(socket_path: str, log_path: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        daemon = subprocess.Popen([str(BIN / "llm-exec-daemon"), "--foreground", "--socket", socket_path], env=env,
                                  stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    deadline = time.monotonic() + 120
    while answering_pid(socket_path) != daemon.pid:
        if daemon.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"llm-exec-daemon did not start:\n{Path(log_path).read_text()}")
        time.sleep(0.05)
    return daemon


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--executors", default=",".join(BUILTIN), help="comma-separated (default: all five)")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    compileall.compile_dir(os.path.dirname(llm_exec.__file__), quiet=1)

    python_pass = [sys.executable, "-c", "pass"]
    baseline_samples: list[float] = []
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as scratch, Emulator() as emu:
        socket_path = os.path.join(scratch, "daemon.sock")
        base = {**os.environ, **client_env(emu.url, "bench-key"), "LLM_EXEC_STATE_DIR": os.path.join(scratch, "state")}
        in_process = {**base, "LLM_EXEC_DAEMON": "off"}
        through_daemon = {**base, "LLM_EXEC_DAEMON": socket_path}
        daemon = start_daemon(socket_path, os.path.join(scratch, "daemon.log"), in_process)
        try:
            for executor in args.executors.split(","):
                program = [str(BIN / f"llm-exec-{executor}")]
                for env in (through_daemon, in_process):  # one unmeasured call each: page cache, first fork
                    elapsed_ms(program, env, TASK)
                warm, cold = [], []
                for _ in range(args.runs):
                    baseline_samples.append(elapsed_ms(python_pass, in_process))
                    warm.append(elapsed_ms(program, through_daemon, TASK))
                    cold.append(elapsed_ms(program, in_process, TASK))
                rows.append({"executor": f"llm-exec-{executor}", "daemon_ms": round(statistics.median(warm), 1),
                             "in_process_ms": round(statistics.median(cold), 1)})
        finally:
            daemon.terminate()
            daemon.wait(timeout=30)

    baseline = round(statistics.median(baseline_samples), 1)
    for row in rows:
        row["daemon_over_python"] = round(row["daemon_ms"] / baseline, 2)
        row["speedup"] = round(row["in_process_ms"] / row["daemon_ms"], 1)
    print(f"python -c pass: {baseline} ms (median of {len(baseline_samples)}); {args.runs} rounds per executor; "
          f"{os.cpu_count()} cores; goal: <= {GOAL_MS:.0f} ms and <= {GOAL_RATIO:.0f} x python -c pass\n")
    print("| executor | through llm-exec-daemon | in-process | daemon / `python -c pass` | in-process / daemon |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['executor']} | {row['daemon_ms']} ms | {row['in_process_ms']} ms "
              f"| {row['daemon_over_python']}× | {row['speedup']}× |")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"python_pass_ms": baseline, "runs": args.runs, "rows": rows},
                                                   indent=2) + "\n")


if __name__ == "__main__":
    main()
