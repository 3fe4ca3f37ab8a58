#!/usr/bin/env python3
"""Benchmark harness (`make bench`): one-shot start-up and peak RSS of every executor against its SDK
import, the same call with simonw's `llm` and LiteLLM, batch throughput against LiteLLM's async batch,
llm-route overhead and streaming passthrough. Medians of --runs runs against the bundled emulator.

Prints a Markdown table, writes it into README.md between the bench markers, and the raw numbers
into bench-results.json. `llm` and `litellm` are installed into .bench-venv/ only (created on the
first run), never into the project's venv.

Usage: python scripts/bench/run.py [--runs 10] [--only oneshot,batch,route,stream,otel] [--no-rivals] [--no-readme]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from typing import Any

import oneshot
import otel
import route
import streaming
import throughput
import warm
from common import ROOT, compile_package, log

SECTIONS = ("oneshot", "warm", "batch", "route", "stream", "otel")
README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"
GOALS = {"ratio": 1.25, "rss_mb": 90, "pct_of_ideal": 90, "route_ms": 60, "stream_p99_ms": 2, "warm_ms": 50,
         "warm_over_pass": 4, "otel_beyond_import_ms": 30, "otel_dead_ms": 1000, "umbrella": 1.05}


def mark(ok: bool) -> str:
    return "✅" if ok else "❌"


def markdown(results: dict[str, Any], command: str) -> str:
    meta = results["meta"]
    out = [f"Produced by `{command}` on {meta['date']}: {meta['cores']} cores, Python {meta['python']}, "
           f"medians of {meta['runs']} runs, the emulator on loopback in its own process. Raw numbers: "
           f"`{meta['json']}`.", ""]
    goals: list[str] = []
    if "oneshot" in results:
        one = results["oneshot"]
        out += [f"**One task, one process** (emulator latency 0; `python -c pass` {one['python_pass_ms']:g} ms)", "",
                "| executor | `python -c \"<sdk import>\"` | one task | ratio | peak RSS |", "|---|---|---|---|---|"]
        for row in one["executors"]:
            out.append(f"| {row['executor']} | `{row['sdk_import']}` {row['sdk_import_ms']:g} ms "
                       f"| {row['call_ms']:g} ms | {row['ratio']:.2f}× | {row['peak_rss_mb']:g} MB |")
            goals.append(f"{mark(row['ratio'] <= GOALS['ratio'])} {row['executor']}: {row['ratio']:.2f}× its SDK "
                         f"import (goal ≤ {GOALS['ratio']}×)")
        if "umbrella" in one:
            row = one["umbrella"]
            out.append(f"| `{row['command']}` | (as llm-exec-gpt) | {row['call_ms']:g} ms "
                       f"| {row['over_dedicated']:.2f}× llm-exec-gpt | {row['peak_rss_mb']:g} MB |")
            goals.append(f"{mark(row['over_dedicated'] <= GOALS['umbrella'])} `{row['command']}`: "
                         f"{row['over_dedicated']:.3f}× llm-exec-gpt (goal ≤ {GOALS['umbrella']}×)")
        worst_rss = max(one["executors"], key=lambda row: row["peak_rss_mb"])
        goals.append(f"{mark(worst_rss['peak_rss_mb'] <= GOALS['rss_mb'])} one-shot peak RSS ≤ {GOALS['rss_mb']} MB "
                     f"(largest: {worst_rss['executor']} {worst_rss['peak_rss_mb']:g} MB)")
        if one["rivals"]:
            gpt = next(row for row in one["executors"] if row["executor"] == "llm-exec-gpt")
            out += ["", "**The same call with the tools users would pick instead**", "",
                    "| tool | one task | peak RSS |", "|---|---|---|",
                    f"| llm-exec-gpt | {gpt['call_ms']:g} ms | {gpt['peak_rss_mb']:g} MB |"]
            names = {"llm": "simonw's `llm` {v} CLI (OpenAI-compatible model at the emulator, `--no-stream`)",
                     "litellm": "LiteLLM {v} one-shot script (`litellm.completion`, `api_base` at the emulator)"}
            for name, row in one["rivals"].items():
                out.append(f"| {names[name].format(v=row['version'])} | {row['wall_ms']:g} ms "
                           f"| {row['peak_rss_mb']:g} MB |")
    if "warm" in results:
        wm = results["warm"]
        out += ["", f"**Warm path**: through `llm-exec-daemon` vs in-process (`scripts/bench_daemon.py`, "
                    f"`python -c pass` {wm['python_pass_ms']:g} ms)", "",
                "| executor | through the daemon | in-process | daemon / `python -c pass` |", "|---|---|---|---|"]
        for row in wm["rows"]:
            out.append(f"| {row['executor']} | {row['daemon_ms']:g} ms | {row['in_process_ms']:g} ms "
                       f"| {row['daemon_over_python']:g}× |")
            ok = row["daemon_ms"] <= GOALS["warm_ms"] and row["daemon_over_python"] <= GOALS["warm_over_pass"]
            goals.append(f"{mark(ok)} {row['executor']} through the daemon: {row['daemon_ms']:g} ms, "
                         f"{row['daemon_over_python']:g}× `python -c pass` (goal ≤ {GOALS['warm_ms']} ms and "
                         f"≤ {GOALS['warm_over_pass']}×)")
    if "batch" in results:
        batch = results["batch"]
        out += ["", f"**Batch**: {batch['tasks']:,} tasks through one process, concurrency {batch['concurrency']}, "
                    f"emulator latency {batch['latency_ms']:g} ms (ideal {batch['ideal_tasks_per_s']:g} tasks/s). "
                    "Steady tasks/s: results completed between the 10th and 90th percentile of completion times "
                    "(no start-up, no draining last wave); steady CPU: a one-task run of the same command taken off.",
                    "",
                "| | whole process | tasks/s | % of ideal | CPU ms/task | steady tasks/s | steady % of ideal "
                "| steady CPU ms/task | peak RSS |", "|---|---|---|---|---|---|---|---|---|"]
        labels = {"llm-exec-gpt": f"`llm-exec-gpt --batch --concurrency {batch['concurrency']}`",
                  "llm-exec-gpt via daemon": "the same, handed to a warm `llm-exec-daemon`",
                  "litellm": f"LiteLLM {{v}} `acompletion`, `asyncio.gather`, semaphore {batch['concurrency']}",
                  "raw": f"ceiling: bare HTTP/1.1 from a stdlib asyncio client, {batch['concurrency']} connections, "
                         "no SDK (`scripts/bench/raw_batch.py`)"}
        for name, row in batch["results"].items():
            # Through the daemon the work runs in its forked child: the caller's CPU and RSS say nothing.
            elsewhere = name == "llm-exec-gpt via daemon"
            cpu, steady_cpu, rss = (("in the daemon",) * 3 if elsewhere else
                                    (f"{row['cpu_ms_per_task']:g}", f"{row['steady_cpu_ms_per_task']:g}",
                                     f"{row['peak_rss_mb']:g} MB"))
            out.append(f"| {labels[name].format(v=row.get('version'))} | {row['wall_s']:g} s | {row['tasks_per_s']:g} "
                       f"| {row['pct_of_ideal']:g} % | {cpu} | {row['steady_tasks_per_s']:g} "
                       f"| {row['steady_pct_of_ideal']:g} % | {steady_cpu} | {rss} |")
        ours = batch["results"]["llm-exec-gpt"]
        goals.append(f"{mark(ours['steady_pct_of_ideal'] >= GOALS['pct_of_ideal'])} batch throughput in the steady "
                     f"state: {ours['steady_pct_of_ideal']:g} % of ideal (goal ≥ {GOALS['pct_of_ideal']} %)")
        ceiling = batch["results"].get("raw")
        within = f"; a bare stdlib client on the same emulator reaches {ceiling['pct_of_ideal']:g} %" if ceiling else ""
        warm = batch["results"].get("llm-exec-gpt via daemon")
        if warm:
            within += f"; handed to a warm llm-exec-daemon, {warm['pct_of_ideal']:g} %"
        goals.append(f"{mark(ours['pct_of_ideal'] >= GOALS['pct_of_ideal'])} batch throughput counting the process "
                     f"start-up (interpreter and SDK import, {ours['startup_wall_ms'] - batch['latency_ms']:g} ms): "
                     f"{ours['pct_of_ideal']:g} % of ideal (goal ≥ {GOALS['pct_of_ideal']} %{within})")
        if "litellm" in batch["results"]:
            theirs = batch["results"]["litellm"]
            goals.append(f"{mark(ours['cpu_ms_per_task'] < theirs['cpu_ms_per_task'])} batch CPU per task "
                         f"{ours['cpu_ms_per_task']:g} ms vs LiteLLM's {theirs['cpu_ms_per_task']:g} ms (goal: fewer)")
    if "route" in results:
        rt = results["route"]
        out += ["", "**llm-route**: decision + spawn + relay over calling the executor directly", "",
                "| executor | direct | via llm-route | overhead |", "|---|---|---|---|"]
        for row in rt["rows"]:
            out.append(f"| llm-exec-{row['executor']} | {row['direct_ms']:g} ms | {row['route_ms']:g} ms "
                       f"| {row['overhead_ms']:g} ms |")
            goals.append(f"{mark(row['overhead_ms'] <= GOALS['route_ms'])} llm-route overhead over llm-exec-"
                         f"{row['executor']}: {row['overhead_ms']:g} ms (goal ≤ {GOALS['route_ms']} ms)")
        out.append(f"\n`llm-route --explain` (the decision alone, 6 agents): {rt['explain_ms']:g} ms")
    if "stream" in results:
        st = results["stream"]
        out += ["", f"**Streaming passthrough**: chunk handed to the kernel by the server → its delta line readable "
                    f"on the executor's stdout ({st['chunks_per_run']} chunks {st['chunk_interval_ms']:g} ms apart, "
                    f"{st['runs']} runs)", "", "| executor | p50 | p99 | max | first chunk of a run (p50) | chunks |",
                "|---|---|---|---|---|---|"]
        for row in st["executors"]:
            out.append(f"| {row['executor']} | {row['p50_ms']:.2f} ms | {row['p99_ms']:.2f} ms "
                       f"| {row['max_ms']:.2f} ms | {row['first_chunk_p50_ms']:.2f} ms | {row['samples']} |")
            goals.append(f"{mark(row['p99_ms'] <= GOALS['stream_p99_ms'])} {row['executor']} streaming p99 "
                         f"{row['p99_ms']:.2f} ms (goal ≤ {GOALS['stream_p99_ms']} ms)")
    if "otel" in results:
        ot = results["otel"]
        out += ["", f"**OpenTelemetry traces** (issue 11): one task with tracing off, with OTLP/HTTP export to a "
                    f"live receiver on loopback, and to a dead collector (closed port); the OTel SDK + exporter "
                    f"import alone: {ot['sdk_import_ms']:g} ms", "",
                "| executor | tracing off | export on | added | added beyond the SDK import | dead collector "
                "| added |", "|---|---|---|---|---|---|---|"]
        for row in ot["rows"]:
            out.append(f"| {row['executor']} | {row['off_ms']:g} ms | {row['live_ms']:g} ms | {row['added_ms']:g} ms "
                       f"| {row['beyond_import_ms']:g} ms | {row['dead_ms']:g} ms | {row['dead_added_ms']:g} ms |")
            goals.append(f"{mark(row['beyond_import_ms'] <= GOALS['otel_beyond_import_ms'])} {row['executor']} "
                         f"with OTLP export on: {row['beyond_import_ms']:+g} ms beyond the SDK import "
                         f"(goal ≤ {GOALS['otel_beyond_import_ms']} ms)")
            goals.append(f"{mark(row['dead_added_ms'] <= GOALS['otel_dead_ms'])} {row['executor']} with a dead "
                         f"collector: +{row['dead_added_ms']:g} ms (goal ≤ {GOALS['otel_dead_ms']} ms)")
        off = ot["imported_when_off"]
        goals.append(f"{mark(not off)} tracing off: " + (f"imports {', '.join(off)}" if off else
                     "no module of the OTel SDK, its exporters or llm_exec's tracing imported (llm-exec-gpt)"))
    out += ["", "**Goals (issues 7, 11, 13)**", "", *(f"- {goal}" for goal in goals)]
    return "\n".join(out)


def write_readme(table: str) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        log("README.md has no bench markers: table not written there")
        return
    readme.write_text(text[: start + len(README_START)] + "\n" + table + "\n" + text[end:], encoding="utf-8")
    log("README.md: Performance table updated")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="measured runs per figure (medians; default 10)")
    parser.add_argument("--batch-runs", type=int, default=None, help="runs of the batch figures (default --runs)")
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--no-rivals", action="store_true", help="skip llm and LiteLLM (no .bench-venv)")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite README.md")
    parser.add_argument("--json", default=str(ROOT / "bench-results.json"))
    args = parser.parse_args()
    sections = [s for s in args.only.split(",") if s]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    started = time.monotonic()
    compile_package()
    results: dict[str, Any] = {"meta": {"date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(),
                                        "python": platform.python_version(), "runs": args.runs,
                                        "command": "python scripts/bench/run.py " + shlex.join(sys.argv[1:]),
                                        "json": os.path.relpath(args.json, ROOT)}}
    if "oneshot" in sections:
        results["oneshot"] = oneshot.run(args.runs, with_rivals=not args.no_rivals)
    if "batch" in sections:
        results["batch"] = throughput.run(args.batch_runs or args.runs, args.tasks, args.concurrency,
                                          args.latency_ms, with_rivals=not args.no_rivals)
    if "warm" in sections and warm.available():
        results["warm"] = warm.run(args.runs)
    if "route" in sections and route.available():
        results["route"] = route.run(args.runs)
    if "stream" in sections:
        results["stream"] = streaming.run(args.runs)
    if "otel" in sections:
        results["otel"] = otel.run(args.runs)
    results["meta"]["seconds"] = round(time.monotonic() - started)
    shown = "make bench" if len(sys.argv) == 1 else results["meta"]["command"]
    table = markdown(results, shown)
    print(table)
    with open(args.json, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
        handle.write("\n")
    if not args.no_readme:
        write_readme(table)


if __name__ == "__main__":
    main()
