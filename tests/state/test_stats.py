"""`llm-exec stats` costs: a call without a known price (the result's cost_usd null) is unknown, not
free: it stays out of the sums and is counted."""

from __future__ import annotations

import json
import subprocess

from llm_exec.emulator import Emulator
from llm_exec.state.stats import cost_summary, render_table, summarise
from tests.conftest import BIN_DIR, run_executor, subprocess_env


def _row(agent: str, cost: float | None) -> dict:
    return {"agent": agent, "model": "m", "status": "success", "cost_usd": cost, "timestamp": "2026-12-01T10:00:00Z",
            "latency_seconds": 0.1}


def test_unknown_costs_stay_out_of_the_sum_and_are_counted() -> None:
    rows = [_row("a", 0.25), _row("a", None), _row("a", 0.5), _row("b", None), _row("b", None)]
    by_agent = {group["agent"]: group for group in summarise(rows, ["agent"])}
    assert (by_agent["a"]["cost_usd"], by_agent["a"]["cost_unknown_calls"]) == (0.75, 1)
    assert (by_agent["b"]["cost_usd"], by_agent["b"]["cost_unknown_calls"]) == (None, 2)
    assert cost_summary(rows) == {"cost_usd": 0.75, "cost_unknown_calls": 3}
    assert cost_summary([]) == {"cost_usd": 0.0, "cost_unknown_calls": 0}
    assert cost_summary([_row("c", 0.0)]) == {"cost_usd": 0.0, "cost_unknown_calls": 0}  # a cached call is free
    table = render_table(summarise(rows, ["agent"]), ["agent"])
    last_cells = {line.split()[0]: line.rstrip().rsplit("  ", 1)[-1].strip() for line in table.splitlines()[1:]}
    assert last_cells == {"a": "0.75 (+1 unknown)", "b": "unknown (2)"}  # not 0.0


def test_stats_command_reports_unknown_costs() -> None:
    with Emulator() as emu:
        priced = run_executor("gpt", {"agent": "cloud", "prompt": "x"}, url=emu.url)
        unpriced = run_executor("llama", {"agent": "local", "prompt": "x"}, url=emu.url)
    assert priced.result["cost_usd"] and unpriced.result["cost_usd"] is None
    out = subprocess.run([str(BIN_DIR / "llm-exec"), "stats", "--json", "--by", "agent"], capture_output=True,
                         check=True, env=subprocess_env())
    report = json.loads(out.stdout)
    assert (report["cost_usd"], report["cost_unknown_calls"]) == (priced.result["cost_usd"], 1)
    groups = {group["agent"]: group for group in report["groups"]}
    assert (groups["local"]["cost_usd"], groups["local"]["cost_unknown_calls"]) == (None, 1)
    assert (groups["cloud"]["cost_usd"], groups["cloud"]["cost_unknown_calls"]) == (priced.result["cost_usd"], 0)
    text = subprocess.run([str(BIN_DIR / "llm-exec"), "stats", "--by", "agent"], capture_output=True, check=True,
                          env=subprocess_env()).stdout.decode()
    assert "1 calls of unknown cost not included" in text
    assert any(line.startswith("local ") and line.rstrip().endswith("unknown (1)") for line in text.splitlines())
