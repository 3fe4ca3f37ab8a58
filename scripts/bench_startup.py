#!/usr/bin/env python3
"""Start-up benchmark: wall time of each one-shot executor, next to the cost of importing its SDK.

For every executor: median wall time (over --runs runs) of `--dry-run` (parse, validate, build
the request; no network) and of a real call to the bundled emulator, against
`python -c pass` and `python -c "import <its sdk>"`. Prints a Markdown table (pasted into the
README's Performance section) and writes the numbers as JSON with --json FILE.

Usage: python scripts/bench_startup.py [--runs 10] [--json bench-startup.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from llm_exec.emulator import Emulator

BIN = Path(sys.executable).parent
SDK_IMPORT = {
    "claude": "import anthropic",
    "gpt": "import openai",
    "gemini": "from google import genai",
    "custom": "import requests",
    "llama": "import requests",
}
TASK = json.dumps({"task_id": "bench", "prompt": "Say hello", "max_tokens": 20}).encode()


def wall(argv: list[str], env: dict[str, str], stdin: bytes | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, input=stdin, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def median_ms(runs: int, argv: list[str], env: dict[str, str], stdin: bytes | None = None) -> float:
    wall(argv, env, stdin)  # warm the OS page cache and .pyc files; not counted
    return round(statistics.median(wall(argv, env, stdin) for _ in range(runs)) * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()

    with Emulator() as emu:
        env = {
            **os.environ,
            "ANTHROPIC_BASE_URL": emu.url, "ANTHROPIC_API_KEY": "bench-key",
            "OPENAI_BASE_URL": f"{emu.url}/v1", "OPENAI_API_KEY": "bench-key",
            "GOOGLE_GEMINI_BASE_URL": emu.url, "GOOGLE_API_KEY": "bench-key",
            "OLLAMA_HOST": emu.url, "LLM_EXEC_CUSTOM_ENDPOINT": f"{emu.url}/custom",
            "LLM_EXEC_CUSTOM_API_KEY": "bench-key",
        }
        python = [sys.executable]
        baseline = median_ms(args.runs, [*python, "-c", "pass"], env)
        rows = []
        for executor, sdk in SDK_IMPORT.items():
            program = str(BIN / f"llm-exec-{executor}")
            sdk_ms = median_ms(args.runs, [*python, "-c", sdk], env)
            dry_ms = median_ms(args.runs, [program, "--dry-run"], env, TASK)
            call_ms = median_ms(args.runs, [program], env, TASK)
            rows.append({"executor": f"llm-exec-{executor}", "sdk_import": sdk, "sdk_import_ms": sdk_ms,
                         "dry_run_ms": dry_ms, "call_ms": call_ms, "call_over_sdk": round(call_ms / sdk_ms, 2)})

    print(f"python -c pass: {baseline} ms (median of {args.runs}); machine: {os.cpu_count()} cores\n")
    print("| executor | `python -c \"<sdk import>\"` | --dry-run | call to emulator | call / SDK import |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['executor']} | `{row['sdk_import']}` {row['sdk_import_ms']} ms | {row['dry_run_ms']} ms "
              f"| {row['call_ms']} ms | {row['call_over_sdk']}× |")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"python_pass_ms": baseline, "runs": args.runs, "rows": rows},
                                                   indent=2) + "\n")


if __name__ == "__main__":
    main()
