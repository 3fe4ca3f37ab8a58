"""`llm-exec report` without a browser: the numbers worked out of ledger rows, unknown costs kept
apart, every ledger value escaped, the command's flags and failures. The rendered page is checked
in headless Chromium by test_report_browser.py."""

from __future__ import annotations

import re
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from llm_exec.report import build_report_data, render_html
from llm_exec.report.data import percentile
from llm_exec.report.page import usd
from llm_exec.state import open_store
from tests.conftest import BIN_DIR, subprocess_env

NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC
DAY = 86400.0


def row(days_ago: float = 0.0, **fields: Any) -> dict[str, Any]:
    ts = NOW - days_ago * DAY
    base: dict[str, Any] = {
        "ts": ts, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts)), "task_id": "t",
        "agent": "a", "provider": "openai", "model": "gpt-5.4-mini", "prompt_tokens": 10, "completion_tokens": 5,
        "tokens_used": 15, "cost_usd": 0.001, "status": "success", "attempts": 1, "latency_seconds": 1.0,
        "error_type": None, "cached": False,
    }
    return {**base, **fields}


def llm_exec(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN_DIR / "llm-exec"), *args], capture_output=True, text=True, timeout=60,
                          env={**subprocess_env(), **(env or {})}, check=False)


def test_unknown_costs_are_counted_apart_never_summed_as_zero() -> None:
    rows = [row(cost_usd=0.25), row(agent="local", provider="ollama", model="llama3.2", cost_usd=None),
            row(agent="local", provider="ollama", model="llama3.2", cost_usd=None),
            row(status="error", error_type="server_error", cost_usd=None, prompt_tokens=None,
                completion_tokens=None, tokens_used=None)]
    data = build_report_data(rows, source="test", now=NOW)
    assert (data.total.cost_usd, data.total.priced_calls, data.total.unknown_calls) == (0.25, 1, 3)
    assert (data.unknown_unpriced, data.unknown_no_usage) == (2, 1)
    local = data.cost_by_agent["local"]
    assert (local.calls, local.priced_calls, local.unknown_calls) == (2, 0, 2)
    page = render_html(data)
    cell = re.search(r'<td class="agent">local</td><td class="num calls">2</td>(<td[^>]*>[^<]*</td>)', page)
    assert cell and ">unknown<" in cell.group(1) and "$0" not in cell.group(1)
    assert re.search(r'id="unknown-cost-calls"[^>]*>3<', page)
    assert "3 of 4 calls have no known cost" in page
    assert "2 with usage but no price" in page and "1 failed before the provider reported any usage" in page


def test_a_cached_answer_costs_zero_and_is_known() -> None:
    data = build_report_data([row(cost_usd=0.0, cached=True)], source="test", now=NOW)
    assert (data.total.priced_calls, data.total.unknown_calls, data.top_tasks) == (1, 0, [])


def test_every_ledger_value_is_escaped_and_the_page_loads_nothing() -> None:
    evil = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    rows = [row(task_id=evil, agent=evil, provider=evil, model=evil, cost_usd=1.0, status="error", error_type=evil,
                timestamp=evil)]
    page = render_html(build_report_data(rows, source=evil, now=NOW))
    assert "<script" not in page and "<img" not in page  # as text only: &lt;img src=x onerror=...
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 6  # task, agent, model, error, source, chart
    # Nothing outside the page: no src/href but data: URIs, and the only URL is SVG's namespace name.
    assert re.findall(r'(?:src|href)="(?!data:)', page) == []
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}
    assert "default-src 'none'" in page


def test_percentiles_are_the_inclusive_method_of_llm_exec_stats() -> None:
    values = sorted([0.12, 0.5, 0.51, 0.9, 1.7, 2.2, 3.3, 8.0, 12.5])
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    for q in (50, 95, 99):
        assert percentile(values, q / 100) == pytest.approx(cuts[q - 1])
    assert percentile([4.2], 0.99) == 4.2 and percentile([], 0.5) is None


def test_days_are_filled_and_top_tasks_ranked() -> None:
    rows = [row(3, task_id="old", cost_usd=0.5), row(1, task_id="mid", cost_usd=2.0),
            row(0, task_id="new", cost_usd=0.5, agent="b")]
    data = build_report_data(rows, source="test", now=NOW)
    assert data.days == ["2027-01-12", "2027-01-13", "2027-01-14", "2027-01-15"]
    assert data.cost_by_day["2027-01-13"].calls == 0  # an idle day is drawn as idle
    assert [t.task_id for t in data.top_tasks] == ["mid", "new", "old"]  # equal costs: the most recent first


def test_odd_rows_are_read_not_fatal() -> None:
    rows = [{"status": "success"}, {"cost_usd": "12", "latency_seconds": "fast", "attempts": None, "ts": "x"},
            {"cost_usd": float("nan"), "prompt_tokens": True, "timestamp": "not a date", "agent": 42}]
    data = build_report_data(rows, source="test", now=NOW)
    assert (data.calls, data.total.priced_calls, data.prompt_tokens) == (3, 0, 0)
    assert data.days == ["unknown"]
    assert "<!DOCTYPE html>" in render_html(data)


@pytest.mark.parametrize(("value", "shown"), [(0.000171, "$0.000171"), (0.0123456, "$0.0123"), (0.5, "$0.500"),
                                              (12.3456, "$12.35"), (1234.5, "$1,234.50"), (0, "$0.00"),
                                              (3.2e-7, "$0.000000320")])
def test_costs_keep_three_significant_digits(value: float, shown: str) -> None:
    assert usd(value) == shown


def test_command_writes_the_window_asked_for(tmp_path: Path) -> None:
    store = open_store()
    now = time.time()
    for days_ago, task in ((0.5, "recent"), (40, "old")):
        store.append_ledger({**row(task_id=task), "ts": now - days_ago * DAY,
                             "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - days_ago * DAY))})
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "r.html"
    done = llm_exec("report", "--since-days", "30", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "1 calls" in done.stderr and str(out) in done.stderr and done.stdout == ""
    page = out.read_text()
    assert ">recent<" in page and ">old<" not in page
    assert list(out.parent.iterdir()) == [out]  # no temporary file left beside it
    whole = llm_exec("report", "-o", "-")
    assert whole.returncode == 0 and ">recent<" in whole.stdout and ">old<" in whole.stdout


def test_command_on_an_empty_ledger_says_so(tmp_path: Path) -> None:
    done = llm_exec("report", "-o", str(tmp_path / "r.html"))
    assert done.returncode == 0, done.stderr
    assert "No calls in the ledger for this window." in (tmp_path / "r.html").read_text()


def test_command_failures_exit_2_with_a_message(tmp_path: Path) -> None:
    done = llm_exec("report", "-o", str(tmp_path / "r.html"), env={"LLM_EXEC_STATE_URL": "http://nowhere"})
    assert done.returncode == 2 and "state store unavailable" in done.stderr and "Traceback" not in done.stderr
    done = llm_exec("report", "-o", str(tmp_path / "missing" / "r.html"))
    assert done.returncode == 2 and "cannot write" in done.stderr and "Traceback" not in done.stderr
    done = llm_exec("report", "--since-days", "0")
    assert done.returncode == 2


def test_help_shows_an_example() -> None:
    done = llm_exec("report", "--help")
    assert done.returncode == 0
    assert "llm-exec report --since-days 7 -o week.html" in done.stdout and "--since-days" in done.stdout
    assert "report" in llm_exec("--help").stdout
