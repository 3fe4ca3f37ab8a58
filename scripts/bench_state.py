#!/usr/bin/env python3
"""What shared state adds to one call: SQLite (default) and Redis, against LLM_EXEC_STATE=off.

Two measurements, medians over --runs:
  1. in-process: the guard's store work for one call (open the store, breaker check + record,
     budget reserve + settle, rate-limit take + correct, ledger row), with no network;
  2. end to end: one `llm-exec-llama` process against the emulator, state off vs SQLite vs Redis.
Redis needs `redis-server` on PATH (started here on a free loopback port).

Usage: python scripts/bench_state.py [--runs 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from llm_exec.emulator import Emulator
from llm_exec.state.guard import CallIdentity, Guard, GuardConfig
from llm_exec.state.policies import BudgetCap

BIN = Path(sys.executable).parent


def guard_cycle_ms(runs: int) -> float:
    config = GuardConfig(rpm=10_000, tpm=10_000_000, budgets=(BudgetCap("agent:bench", "daily", 1e9),))
    identity = CallIdentity("ollama", "llama3.2", "http://127.0.0.1:1", "fingerprint")
    times = []

    async def no_sleep(_: float) -> None:
        return None

    for _ in range(runs):
        started = time.perf_counter()
        guard = Guard(config, identity, warn=print)
        asyncio.run(guard.admit(100, 0.001, remaining=lambda: 60.0, sleep=no_sleep))
        guard.before_attempt()
        guard.after_attempt(None)
        guard.finish({"ts": time.time(), "status": "success"}, None, 0.001)
        guard.close()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 2)


def executor_ms(runs: int, env: dict[str, str]) -> float:
    task = json.dumps({"prompt": "hello", "max_tokens": 10}).encode()
    times = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        subprocess.run([str(BIN / "llm-exec-llama")], input=task, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return round(statistics.median(times[1:]) * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    redis_binary = shutil.which("redis-server")
    with tempfile.TemporaryDirectory() as tmp, Emulator() as emu:
        base = {**os.environ, "OLLAMA_HOST": emu.url, "LLM_EXEC_STATE_DIR": tmp}
        base.pop("LLM_EXEC_STATE_URL", None)
        rows = []
        os.environ.update({"LLM_EXEC_STATE_DIR": tmp})
        os.environ.pop("LLM_EXEC_STATE_URL", None)
        rows.append(("off", None, executor_ms(args.runs, {**base, "LLM_EXEC_STATE": "off"})))
        rows.append(("sqlite", guard_cycle_ms(args.runs), executor_ms(args.runs, base)))
        if redis_binary:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            server = subprocess.Popen([redis_binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
                                      stdout=subprocess.DEVNULL)
            try:
                time.sleep(0.3)
                url = f"redis://127.0.0.1:{port}/0"
                os.environ["LLM_EXEC_STATE_URL"] = url
                rows.append(("redis", guard_cycle_ms(args.runs), executor_ms(args.runs, {**base,
                                                                                        "LLM_EXEC_STATE_URL": url})))
            finally:
                server.kill()
    off = rows[0][2]
    print(f"median of {args.runs} runs; llm-exec-llama one-shot against the emulator\n")
    print("| state | guard work per call (in-process) | one-shot executor | added vs off |")
    print("|---|---|---|---|")
    for name, cycle, wall in rows:
        print(f"| {name} | {'—' if cycle is None else f'{cycle} ms'} | {wall} ms | "
              f"{'—' if name == 'off' else f'+{round(wall - off, 1)} ms'} |")


if __name__ == "__main__":
    main()
