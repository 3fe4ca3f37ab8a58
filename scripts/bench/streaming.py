"""(5) Streaming passthrough: from the moment the server hands a chunk to the kernel to the moment the
executor's delta line for it can be read from its stdout, for every streaming executor; p50/p99
over all chunks of all runs. The server (sse_server.py, its own process) timestamps each chunk;
this process timestamps each delta line as it reads it (both CLOCK_MONOTONIC)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import BIN, ROOT, executor_env, log, median, percentile

STREAMING = ("gpt", "claude", "gemini", "llama")
TOKEN = re.compile(r"w\d{3}")


def one_run(executor: str, env: dict[str, str], log_file: Path) -> list[float]:
    """Delays (ms) of every chunk of one streamed task."""
    before = len(log_file.read_text().splitlines()) if log_file.exists() else 0
    proc = subprocess.Popen([str(BIN / f"llm-exec-{executor}"), "--stream"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b'{"task_id": "stream", "prompt": "Count", "max_tokens": 400}')
    proc.stdin.close()
    seen: dict[str, int] = {}
    for line in iter(proc.stdout.readline, b""):
        now = time.monotonic_ns()
        item = json.loads(line)
        if item.get("type") == "delta":
            for token in TOKEN.findall(item["text"]):
                seen.setdefault(token, now)
        elif item.get("status") != "success":
            raise RuntimeError(f"llm-exec-{executor} --stream failed: {item.get('error')}")
    proc.wait(timeout=30)
    lines = log_file.read_text().splitlines()
    if len(lines) <= before:
        raise RuntimeError(f"the streaming server logged no request for llm-exec-{executor}")
    sent = json.loads(lines[-1])["sent_ns"]
    missing = set(sent) - set(seen)
    if missing:
        raise RuntimeError(f"llm-exec-{executor}: {len(missing)} chunks never came out as deltas")
    return [(seen[token] - sent_ns) / 1e6 for token, sent_ns in sent.items()]


def run(runs: int, words: int = 40, chunk_ms: float = 10) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        port_file, log_file = work / "port", work / "sent.jsonl"
        server = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "bench" / "sse_server.py"), "--port-file",
                                   str(port_file), "--log", str(log_file), "--words", str(words), "--chunk-ms",
                                   str(chunk_ms)])
        try:
            deadline = time.monotonic() + 30
            while not (port_file.exists() and port_file.read_text().strip()):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the streaming server did not start")
                time.sleep(0.05)
            env = executor_env(f"http://127.0.0.1:{port_file.read_text().strip()}", work)
            rows = []
            for executor in STREAMING:
                log(f"streaming: llm-exec-{executor}, {runs} runs of {words} chunks {chunk_ms:g} ms apart")
                one_run(executor, env, log_file)  # warm-up, not counted
                per_run = [one_run(executor, env, log_file) for _ in range(runs)]
                delays = [delay for run_delays in per_run for delay in run_delays]
                rows.append({"executor": f"llm-exec-{executor}", "samples": len(delays),
                             "p50_ms": round(median(delays), 3), "p99_ms": round(percentile(delays, 0.99), 3),
                             "max_ms": round(max(delays), 3),
                             "first_chunk_p50_ms": round(median([d[0] for d in per_run]), 3)})
        finally:
            server.terminate()
            server.wait(timeout=10)
    return {"runs": runs, "chunks_per_run": words, "chunk_interval_ms": chunk_ms, "executors": rows}
