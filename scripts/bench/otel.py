"""(issue 11) What OpenTelemetry tracing costs a one-shot call: the same task with tracing off, with
OTLP/HTTP export to a live receiver on loopback, and to a dead collector (a closed port), next to
the import of the OTel SDK and exporter themselves. Plus a check that with tracing off not one
module of the SDK, the exporter or our tracing code is imported.

The receiver runs in a thread of this process (its CPU is not the measured process's) and answers
every export at once with an empty ExportTraceServiceResponse. Runs are interleaved, as in oneshot.py.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from common import BIN, TASK, Sample, emulator, executor_env, log, measure, median, ms

EXECUTORS = ("llama", "gpt")
SDK_IMPORT = "import opentelemetry.sdk.trace, opentelemetry.exporter.otlp.proto.http.trace_exporter"
# Modules tracing would bring in: none of them may be imported while tracing is off.
TRACING_MODULES = ("opentelemetry.sdk", "opentelemetry.exporter", "google.protobuf", "llm_exec.telemetry.tracing")


class _Answer(BaseHTTPRequestHandler):
    received = 0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")  # an empty ExportTraceServiceResponse
        self.end_headers()


@contextmanager
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def imported_when_off(env: dict[str, str]) -> list[str]:
    """The tracing modules a traced-off llm-exec-gpt call imports (should be none)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "from llm_exec._entry import gpt; gpt()"],
                          input=TASK, capture_output=True, env=env, check=False)
    names = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.decode().splitlines()
             if line.startswith("import time:")}
    return sorted(n for n in names if n.startswith(TRACING_MODULES))


def run(runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, emulator() as url, receiver() as live:
        env = {k: v for k, v in executor_env(url, Path(tmp)).items()
               if not k.startswith("OTEL_") and k not in ("TRACEPARENT", "TRACESTATE")}
        dead = f"http://127.0.0.1:{closed_port()}"
        commands: dict[str, tuple[list[str], dict[str, str], bytes | None]] = {
            "python -c pass": ([sys.executable, "-c", "pass"], env, None),
            "sdk import": ([sys.executable, "-c", SDK_IMPORT], env, None),
        }
        for executor in EXECUTORS:
            argv = [str(BIN / f"llm-exec-{executor}")]
            commands[f"{executor} off"] = (argv, env, TASK)
            commands[f"{executor} live"] = (argv, {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": live}, TASK)
            commands[f"{executor} dead"] = (argv, {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": dead}, TASK)
        samples: dict[str, list[Sample]] = {name: [] for name in commands}
        for round_ in range(runs + 1):  # round 0 warms the page cache and .pyc files
            log(f"otel round {round_}/{runs}")
            for name, (argv, command_env, stdin) in commands.items():
                sample = measure(argv, command_env, stdin)
                if sample.code != 0:
                    raise RuntimeError(f"{name} exited {sample.code}")
                if round_:
                    samples[name].append(sample)
        exported = _Answer.received
        off_imports = imported_when_off(env)

    def wall(name: str) -> float:
        return median([s.wall for s in samples[name]])

    sdk_import = wall("sdk import") - wall("python -c pass")
    rows = []
    for executor in EXECUTORS:
        off, on, down = wall(f"{executor} off"), wall(f"{executor} live"), wall(f"{executor} dead")
        rows.append({"executor": f"llm-exec-{executor}", "off_ms": ms(off), "live_ms": ms(on),
                     "added_ms": ms(on - off), "beyond_import_ms": ms(on - off - sdk_import),
                     "dead_ms": ms(down), "dead_added_ms": ms(down - off)})
    return {"runs": runs, "sdk_import_ms": ms(sdk_import), "rows": rows, "exports_received": exported,
            "imported_when_off": off_imports}
