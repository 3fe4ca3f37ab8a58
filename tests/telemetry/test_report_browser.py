"""The report as a person sees it: opened in headless Chromium from a real SQLite ledger (real
executors against the emulator, plus older rows written through the store API), with

- the numbers read from the rendered page (innerText over the DevTools protocol) equal to the
  ledger's, worked out here independently of llm_exec.report;
- no console message, exception or network request (console and Log domains of the DevTools
  protocol; a control page proves each kind is caught);
- a `--screenshot` that shows the charts (the PNG is decoded: chart colours are there).

Chromium comes from `make test` (tests/services.py puts it on PATH); missing, the tests fail saying
so. The screenshot stays at <pytest basetemp>/report-browser0/report.png for a human to look at.
"""

from __future__ import annotations

import json
import os
import statistics
import struct
import subprocess
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from llm_exec.emulator import Emulator
from llm_exec.state.sqlite import SqliteStore
from tests.conftest import BIN_DIR, SCRUBBED_ENV, emulator_env, run_executor, subprocess_env
from tests.services import service_binary

DAY = 86400.0
EVIL_AGENT = '<img src=x onerror="alert(1)">'
EVIL_TASK = "\"><script>alert('t')</script>"
# Headless, as root, on a machine without network: no sandbox (root), nothing fetched on start.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-default-apps", "--disable-extensions", "--hide-scrollbars", "--mute-audio")
WIDTH = 1200


# -- Chromium over the DevTools protocol ----------------------------------------------------------------


@dataclass
class PageLoad:
    url: str
    console: list[str] = field(default_factory=list)  # console calls, exceptions, Log entries
    requests: list[str] = field(default_factory=list)  # every URL the page asked for


class Chromium:
    """One headless Chromium, driven over its DevTools websocket (websockets comes with google-genai)."""

    def __init__(self, binary: str, profile: Path) -> None:
        self.binary = binary
        self.profile = profile
        self.process = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=0", f"--window-size={WIDTH},900", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"  # Chromium writes the port it chose here
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and len(port_file.read_text().split()) >= 2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise AssertionError(f"Chromium did not open its DevTools port (exit {self.process.returncode})")
            time.sleep(0.05)
        port, path = port_file.read_text().split()[:2]
        from websockets.sync.client import connect

        self._closing = ExitStack()
        self.ws = self._closing.enter_context(connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=30))
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.call(f"{domain}.enable", session=True)

    def call(self, method: str, params: dict[str, Any] | None = None, *, session: bool = False,
             timeout: float = 30) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            reply = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            if "method" in reply:
                self.events.append(reply)

    def _drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self.events.append(json.loads(self.ws.recv(timeout=left)))
            except TimeoutError:
                return

    def open(self, url: str) -> PageLoad:
        """Navigate, wait for the load event (and a moment for late messages), report what happened."""
        self.events.clear()
        self.call("Page.navigate", {"url": url}, session=True)
        deadline = time.monotonic() + 30
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            assert time.monotonic() < deadline, f"{url} did not load"
            self._drain(0.1)
        self._drain(0.5)
        load = PageLoad(url)
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                load.console.append(f"console.{params.get('type')}: {text}")
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                load.console.append(f"exception: {details.get('exception', {}).get('description') or details}")
            elif method == "Log.entryAdded":
                entry = params.get("entry", {})
                load.console.append(f"{entry.get('source')} {entry.get('level')}: {entry.get('text')}")
            elif method == "Network.requestWillBeSent":
                load.requests.append(params.get("request", {}).get("url", ""))
        return load

    def evaluate(self, expression: str) -> Any:
        answer = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True)
        assert "exceptionDetails" not in answer, answer
        return answer["result"].get("value")

    def screenshot(self, url: str, path: Path, height: int) -> None:
        """Chromium's own --screenshot, in a fresh process and profile, as a person would get it."""
        done = subprocess.run(
            [self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={path.parent / 'screenshot-profile'}",
             f"--window-size={WIDTH},{height}", f"--screenshot={path}", url],
            capture_output=True, timeout=120, check=False)
        assert done.returncode == 0 and path.is_file(), done.stderr.decode(errors="replace")[-2000:]

    def close(self) -> None:
        closing = getattr(self, "_closing", None)
        if closing is not None:
            closing.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


# -- the ledger, the report, the page ---------------------------------------------------------------


@dataclass
class Ledger:
    state_dir: Path
    rows: list[dict[str, Any]]  # what the report's window holds, read back from the store


def _clean_env(state_dir: Path, url: str) -> dict[str, str | None]:
    # Module-scoped, so set up before conftest's per-test scrubbing: do the same here, keeping
    # the emulator's endpoints and test keys.
    ours = emulator_env(url)
    env: dict[str, str | None] = {name: None for name in SCRUBBED_ENV if name not in ours}
    env.update(dict.fromkeys(("LLM_EXEC_PROM_TEXTFILE", "LLM_EXEC_PUSHGATEWAY", "OTEL_EXPORTER_OTLP_ENDPOINT",
                              "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER")))
    env.update({"LLM_EXEC_STATE_DIR": str(state_dir), "LLM_EXEC_DAEMON": "off"})
    return env


def _stamp(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    state_dir = tmp_path_factory.mktemp("report-ledger")
    with Emulator() as emu:
        env = _clean_env(state_dir, emu.url)

        def call(executor: str, **spec: Any) -> None:
            run_executor(executor, spec, url=emu.url, env=env)

        call("gpt", task_id="gpt-1", agent="writer", prompt="one two three")
        call("gpt", task_id="gpt-2", agent="writer", prompt="one two three four five six seven eight nine ten")
        call("gpt", task_id="gpt-3", agent="writer", prompt="a b", max_tokens=200)
        emu.latency_ms = 150  # a slower model, so the latency rows differ
        call("claude", task_id="claude-1", agent="reviewer", prompt="review this change please")
        call("claude", task_id="claude-2", agent="reviewer", prompt="and this one")
        emu.latency_ms = 0
        call("gemini", task_id="gemini-1", agent="writer", prompt="summarise the meeting notes")
        call("llama", task_id="llama-1", agent="local", prompt="local model, no price")
        call("llama", task_id="llama-2", agent="local", prompt="again")
        call("custom", task_id="custom-1", agent="local", prompt="custom endpoint")
        emu.script([{"status": 500}])
        call("gpt", task_id="gpt-error", agent="writer", prompt="fails", max_retries=0)
        emu.script([{"status": 401}])
        call("claude", task_id="claude-401", agent="reviewer", prompt="bad key")
        emu.script([{"status": 503}])
        call("gpt", task_id="gpt-retried", agent="writer", prompt="retried once then fine")
    # Earlier days, and user data that must come out as text, through the store API.
    store = SqliteStore(state_dir / "state.db")
    now = time.time()
    older = [
        (2, {"task_id": "old-gpt", "agent": "writer", "provider": "openai", "model": "gpt-5.4-mini",
             "cost_usd": 0.0123, "latency_seconds": 2.5}),
        (2, {"task_id": EVIL_TASK, "agent": EVIL_AGENT, "provider": "anthropic", "model": "claude-sonnet-4-6",
             "cost_usd": 0.0456, "latency_seconds": 4.25}),
        (5, {"task_id": "old-llama", "agent": "local", "provider": "ollama", "model": "llama3.2", "cost_usd": None,
             "latency_seconds": 0.75}),
        (5, {"task_id": "old-timeout", "agent": "writer", "provider": "openai", "model": "gpt-5.4-mini",
             "cost_usd": None, "status": "error", "error_type": "timeout", "prompt_tokens": None,
             "completion_tokens": None, "tokens_used": None, "attempts": 3, "latency_seconds": 30.0}),
        (40, {"task_id": "outside-window", "agent": "writer", "provider": "openai", "model": "gpt-5.4-mini",
              "cost_usd": 99.0, "latency_seconds": 1.0}),
    ]
    for days_ago, fields in older:
        ts = now - days_ago * DAY
        store.append_ledger({"timestamp": _stamp(ts), "ts": ts, "status": "success", "attempts": 1,
                             "prompt_tokens": 100, "completion_tokens": 40, "tokens_used": 140, "cached": False,
                             "exit_code": 0, "error_type": None, **fields})
    rows = store.ledger_rows(now - 30 * DAY)
    store.close()
    assert len(rows) == 16 and not any(r["task_id"] == "outside-window" for r in rows)
    return Ledger(state_dir, rows)


@pytest.fixture(scope="module")
def report(ledger: Ledger, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report-browser") / "report.html"
    env = {**subprocess_env(), "LLM_EXEC_STATE_DIR": str(ledger.state_dir), "LLM_EXEC_DAEMON": "off"}
    env.pop("LLM_EXEC_STATE_URL", None)
    done = subprocess.run([str(BIN_DIR / "llm-exec"), "report", "--since-days", "30", "-o", str(out)],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    chromium = Chromium(service_binary("chromium"), tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture(scope="module")
def page(browser: Chromium, report: Path) -> dict[str, Any]:
    load = browser.open(report.as_uri())
    shown = browser.evaluate("""JSON.stringify({
        tables: Object.fromEntries([...document.querySelectorAll("table[id]")].map(t => [t.id,
            [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.innerText.trim()))])),
        titles: Object.fromEntries([...document.querySelectorAll("table[id]")].map(t => [t.id,
            [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.title))])),
        cards: Object.fromEntries([...document.querySelectorAll(".cards [id]")].map(e => [e.id, e.innerText])),
        totalCostTitle: document.getElementById("total-cost").title,
        note: document.getElementById("unknown-note").innerText,
        text: document.body.innerText,
        charts: document.querySelectorAll("svg.chart").length,
        scripts: document.scripts.length,
        height: document.documentElement.scrollHeight,
    })""")
    return {"load": load, **json.loads(shown)}


# -- reading numbers as shown ---------------------------------------------------------------------------


def shown_number(text: str) -> tuple[float, int]:
    """The value of "$1,234.50", "0.503 s", "12.5%" or "1,024", and how many decimals it shows."""
    clean = text.replace("$", "").replace(",", "").removesuffix(" s").removesuffix("%").strip()
    decimals = len(clean.split(".")[1]) if "." in clean else 0
    return float(clean), decimals


def assert_shows(text: str, expected: float, what: str, scale: float = 1.0) -> None:
    """The page shows `expected`, rounded to the digits it shows (`scale` 100 for percentages)."""
    value, decimals = shown_number(text)
    assert abs(value - expected * scale) <= 0.5 * 10 ** -decimals + 1e-9, f"{what}: page {text!r}, ledger {expected}"


def quantile(values: list[float], q: int) -> float:
    values = sorted(values)
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def day_of(row: dict[str, Any]) -> str:
    return str(row["timestamp"])[:10]


def name(value: Any) -> str:
    return "(none)" if value is None else str(value)


# -- the tests ---------------------------------------------------------------------------------------


def test_the_page_loads_without_console_messages_errors_or_network(page: dict[str, Any], report: Path) -> None:
    load: PageLoad = page["load"]
    assert load.console == []
    assert load.requests == [report.as_uri()]  # the file itself, nothing else: no CDN, no font, no favicon
    assert page["scripts"] == 0 and page["charts"] == 3  # cost, latency, errors


def test_the_console_check_catches_what_it_looks_for(browser: Chromium, tmp_path: Path) -> None:
    # A control: each kind of problem the report test must not see is seen on a page that has it.
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
                   '<script>console.error("boom"); console.warn("careful")</script>'
                   '<script>throw new Error("uncaught")</script></body></html>')
    load = browser.open(bad.as_uri())
    assert any("console.error: boom" in m for m in load.console), load.console
    assert any("console.warning: careful" in m for m in load.console), load.console
    assert any("uncaught" in m for m in load.console), load.console
    blocked = tmp_path / "blocked.html"  # what an unescaped <img> in the report would do: CSP blocks it, says so
    blocked.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" '
                       "content=\"default-src 'none'\"></head><body><img src=\"http://127.0.0.1:9/x.png\"></body>"
                       "</html>")
    load = browser.open(blocked.as_uri())
    assert any("Content Security Policy" in m for m in load.console), load.console


def test_totals_on_the_page_equal_the_ledger(page: dict[str, Any], ledger: Ledger) -> None:
    rows = ledger.rows
    cards = page["cards"]
    priced = [r["cost_usd"] for r in rows if r["cost_usd"] is not None]
    unknown = [r for r in rows if r["cost_usd"] is None]
    assert int(cards["total-calls"].replace(",", "")) == len(rows)
    assert int(cards["total-errors"]) == sum(r["status"] != "success" for r in rows)
    assert_shows(cards["error-rate"], sum(r["status"] != "success" for r in rows) / len(rows), "error rate", 100)
    assert_shows(cards["total-cost"], sum(priced), "spend")
    assert page["totalCostTitle"] == f"{sum(priced)!r} USD"
    assert int(cards["priced-calls"]) == len(priced)
    assert int(cards["unknown-cost-calls"]) == len(unknown) == 7  # llama x3, custom, 401, 500, timeout
    assert f"{len(unknown)} of {len(rows)} calls have no known cost" in page["note"]
    assert int(cards["prompt-tokens"].replace(",", "")) == sum(r["prompt_tokens"] or 0 for r in rows)
    assert int(cards["completion-tokens"].replace(",", "")) == sum(r["completion_tokens"] or 0 for r in rows)
    assert int(cards["retried-calls"]) == sum((r["attempts"] or 0) > 1 for r in rows) == 2
    assert "outside-window" not in page["text"] and "$99" not in page["text"]


def test_cost_per_agent_and_day_equal_the_ledger(page: dict[str, Any], ledger: Ledger) -> None:
    cells: dict[tuple[str, ...], list[Any]] = defaultdict(list)
    for r in ledger.rows:
        cells[(day_of(r), name(r["agent"]))].append(r["cost_usd"])
        cells[(name(r["agent"]),)].append(r["cost_usd"])
    for table, width in (("cost-by-day", 2), ("cost-by-agent", 1)):
        shown = page["tables"][table]
        assert len(shown) == sum(len(k) == width for k in cells), table
        for line in shown:
            key, (calls, cost, unknown) = tuple(line[:width]), line[width:]
            costs = cells[key]
            known = [c for c in costs if c is not None]
            assert int(calls) == len(costs), (table, key)
            assert int(unknown) == len(costs) - len(known), (table, key)
            if known:
                assert_shows(cost, sum(known), f"{table} {key}")
            else:
                assert cost == "unknown", (table, key, cost)  # never "$0.00"
    agents = {line[0]: line for line in page["tables"]["cost-by-agent"]}
    assert agents["local"][2] == "unknown" and EVIL_AGENT in agents  # shown as text, not markup
    days = {line[0] for line in page["tables"]["cost-by-day"]}
    assert len(days) == 3


def test_latency_per_model_equals_the_ledger(page: dict[str, Any], ledger: Ledger) -> None:
    models: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in ledger.rows:
        models[(name(r["provider"]), name(r["model"]))].append(r)
    shown = page["tables"]["latency-by-model"]
    assert {(line[0], line[1]) for line in shown} == set(models)
    for provider, model, calls, errors, rate, retries, p50, p95, p99, high in shown:
        group = models[(provider, model)]
        latencies = [float(r["latency_seconds"]) for r in group]
        failed = sum(r["status"] != "success" for r in group)
        assert (int(calls), int(errors)) == (len(group), failed), model
        assert_shows(rate, failed / len(group), f"{model} error rate", 100)
        assert int(retries) == sum(max(0, (r["attempts"] or 1) - 1) for r in group), model
        for text, q in ((p50, 50), (p95, 95), (p99, 99)):
            assert_shows(text, quantile(latencies, q), f"{model} p{q}")
        assert_shows(high, max(latencies), f"{model} max")


def test_error_breakdown_equals_the_ledger(page: dict[str, Any], ledger: Ledger) -> None:
    failed = [r for r in ledger.rows if r["status"] != "success"]
    expected = Counter(r["error_type"] for r in failed)
    shown = page["tables"]["errors-by-type"]
    assert {line[0]: int(line[1]) for line in shown} == dict(expected)
    assert set(expected) == {"server_error", "authentication_error", "timeout"}
    for kind, _, share, of_calls in shown:
        assert_shows(share, expected[kind] / len(failed), kind, 100)
        assert_shows(of_calls, expected[kind] / len(ledger.rows), kind, 100)
    by_model = Counter((name(r["provider"]), name(r["model"]), r["error_type"]) for r in failed)
    assert {(p, m, k): int(n) for p, m, k, n in page["tables"]["errors-by-model"]} == dict(by_model)


def test_top_tasks_are_the_most_expensive_calls_of_the_ledger(page: dict[str, Any], ledger: Ledger) -> None:
    priced = sorted((r for r in ledger.rows if r["cost_usd"]), key=lambda r: -r["cost_usd"])[:10]
    shown = page["tables"]["top-tasks"]
    assert [line[1] for line in shown] == [name(r["task_id"]) for r in priced]
    assert shown[0][1] == EVIL_TASK and shown[0][2] == EVIL_AGENT  # the dearest row, its markup as text
    titles = page["titles"]["top-tasks"]
    for line, title, r in zip(shown, titles, priced, strict=True):
        assert_shows(line[-1], r["cost_usd"], f"cost of {r['task_id']}")
        assert title[-1] == f"{r['cost_usd']!r} USD"
        assert line[6] == (f"{r['tokens_used']:,}" if r["tokens_used"] is not None else "–")


def test_screenshot_shows_the_charts(browser: Chromium, page: dict[str, Any], report: Path) -> None:
    shot = report.with_name("report.png")
    browser.screenshot(report.as_uri(), shot, int(page["height"]))
    width, height, pixels = decode_png(shot.read_bytes())
    assert (width, height) == (WIDTH, int(page["height"]))
    counts = Counter(pixels)
    background = counts.most_common(1)[0][1]
    assert background < 0.9 * width * height, "the page is (almost) blank"
    # The first agent's bars and the latency rows are drawn in the palette's first colours.
    for colour in ((0x4E, 0x79, 0xA7), (0xF2, 0x8E, 0x2B), (0xE1, 0x57, 0x59)):
        assert sum(n for rgb, n in counts.items() if all(abs(a - b) <= 3 for a, b in zip(rgb, colour, strict=True))) \
            > 200, f"no chart colour #{bytes(colour).hex()} in {shot}"
    if os.environ.get("LLM_EXEC_REPORT_SCREENSHOT"):  # for a reviewer: where to keep a copy
        Path(os.environ["LLM_EXEC_REPORT_SCREENSHOT"]).write_bytes(shot.read_bytes())


def decode_png(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and RGB pixels of an 8-bit RGB/RGBA PNG (what Chromium writes), stdlib only."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour_type in (2, 6), (depth, colour_type)
    channels = 3 if colour_type == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    pixels: list[tuple[int, int, int]] = []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        pixels.extend(tuple(line[i:i + 3]) for i in range(0, stride, channels))  # type: ignore[misc]
        previous = line
    return width, height, pixels
