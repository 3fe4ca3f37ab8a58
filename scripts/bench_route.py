#!/usr/bin/env python3
"""Route overhead: wall time of `llm-route` (decision + spawn + relay) over calling the executor directly.

For each executor in --executors: `llm-exec-<x>` given the task directly and `llm-route` routing the
same task to a one-agent registry of that type, both against the bundled emulator, run as --runs
interleaved pairs after one warm-up each; reports both medians and the median per-pair difference.
Also `llm-route --explain` (the decision alone, nothing spawned) over examples/registry.yaml (six
agents, priced by genai-prices). The warm-up leaves the price cache and llm-route's cache (parsed
registry, provider facts) warm, as they are from a registry's second use on (README: llm-route,
Environment and overhead, says what a first run costs more).

Usage: python scripts/bench_route.py [--runs 10] [--executors llama,gpt] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from llm_exec.emulator import Emulator

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
TYPES = {"claude": "anthropic-claude", "gpt": "openai-gpt", "gemini": "google-gemini", "llama": "meta-llama",
         "custom": "custom"}
TASK = json.dumps({"task_id": "bench", "prompt": "Say hello", "max_tokens": 20}).encode()


def wall(argv: list[str], env: dict[str, str], stdin: bytes) -> float:
    started = time.perf_counter()
    subprocess.run(argv, input=stdin, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def median_ms(runs: int, argv: list[str], env: dict[str, str], stdin: bytes = TASK) -> float:
    wall(argv, env, stdin)  # warm the page cache and .pyc files; not counted
    return ms(statistics.median(wall(argv, env, stdin) for _ in range(runs)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--executors", default="llama,gpt")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()

    with Emulator() as emu, tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "ANTHROPIC_BASE_URL": emu.url, "ANTHROPIC_API_KEY": "bench-key",
            "OPENAI_BASE_URL": f"{emu.url}/v1", "OPENAI_API_KEY": "bench-key",
            "GOOGLE_GEMINI_BASE_URL": emu.url, "GOOGLE_API_KEY": "bench-key",
            "OLLAMA_HOST": emu.url,
            "LLM_EXEC_CUSTOM_ENDPOINT": f"{emu.url}/custom", "LLM_EXEC_CUSTOM_API_KEY": "bench-key",
            "XDG_CACHE_HOME": str(Path(tmp) / "cache"),
        }
        # A user's shell: the warm-up writes .pyc files (and llm-route's cache) that the timed runs use.
        for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"):
            env.pop(name, None)
        rows = []
        for executor in args.executors.split(","):
            registry = Path(tmp) / f"{executor}.yaml"
            registry.write_text(f"version: 1\nagents:\n  - {{name: only, type: {TYPES[executor]}}}\n")
            direct_argv = [str(BIN / f"llm-exec-{executor}")]
            route_argv = [str(BIN / "llm-route"), "--registry", str(registry)]
            wall(direct_argv, env, TASK), wall(route_argv, env, TASK)  # warm-up, not counted
            # Interleaved pairs: both sides see the same machine load, and the overhead is the median
            # of the per-pair differences.
            pairs = [(wall(direct_argv, env, TASK), wall(route_argv, env, TASK)) for _ in range(args.runs)]
            rows.append({
                "executor": executor,
                "direct_ms": ms(statistics.median(d for d, _ in pairs)),
                "route_ms": ms(statistics.median(r for _, r in pairs)),
                "overhead_ms": ms(statistics.median(r - d for d, r in pairs)),
            })
        explain = median_ms(args.runs, [str(BIN / "llm-route"), "--explain", "--registry",
                                        str(ROOT / "examples" / "registry.yaml")], env)
        baseline = median_ms(args.runs, [sys.executable, "-c", "pass"], env, b"")

    print(f"{args.runs} interleaved runs; python -c pass: {baseline} ms; {os.cpu_count()} cores; "
          "emulator on loopback\n")
    print("| executor | direct call (median) | via llm-route (median) | route overhead (median of pairs) |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| llm-exec-{row['executor']} | {row['direct_ms']} ms | {row['route_ms']} ms "
              f"| {row['overhead_ms']} ms |")
    print(f"\n`llm-route --explain` (decision only, examples/registry.yaml, 6 agents): {explain} ms")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"runs": args.runs, "python_pass_ms": baseline, "rows": rows,
                                                    "explain_ms": explain}, indent=2) + "\n")


if __name__ == "__main__":
    main()
