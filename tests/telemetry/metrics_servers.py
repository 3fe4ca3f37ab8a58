"""Helpers of the metrics tests (tests/telemetry/test_metrics*.py): real Prometheus, Pushgateway and
`llm-exec metrics --serve` processes on loopback, executors started all at once, and exposition
text read with prometheus_client's own parser.

Prometheus and the Pushgateway are found on PATH (`make test` puts them there: tests/services.py);
a missing one fails the test saying so, never skips it.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import BIN_DIR
from tests.services import service_binary

Sample = tuple[str, dict[str, str], float]

# A developer's own metrics or tracing settings, kept from the executors under test.
METRICS_ENV = ("LLM_EXEC_PROM_TEXTFILE", "LLM_EXEC_PUSHGATEWAY", "LLM_EXEC_PUSHGATEWAY_JOB",
               "LLM_EXEC_PUSHGATEWAY_INSTANCE", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
               "OTEL_TRACES_EXPORTER")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until_up(url: str, process: subprocess.Popen[bytes], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited with {process.returncode} before answering {url}")
        try:
            if http_get(url, timeout=1.0)[0] == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not answer {url} within {timeout:g} s")
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# -- exposition text ------------------------------------------------------------------------------


def samples(text: str) -> list[Sample]:
    """Every sample of an exposition text, through prometheus_client's parser (which raises on a
    malformed or torn text)."""
    from prometheus_client.parser import text_string_to_metric_families

    return [(s.name, dict(s.labels), s.value) for family in text_string_to_metric_families(text)
            for s in family.samples]


def total(parsed: Iterable[Sample], name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels`."""
    return sum(value for sample, have, value in parsed
               if sample == name and all(have.get(k) == v for k, v in labels.items()))


def label_values(parsed: Iterable[Sample], name: str, label: str) -> set[str]:
    return {have[label] for sample, have, _ in parsed if sample == name and label in have}


# -- executors ------------------------------------------------------------------------------------


def start_executor(executor: str, spec: Mapping[str, Any], env: Mapping[str, str],
                   args: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([str(BIN_DIR / f"llm-exec-{executor}"), *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(env))
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(spec).encode())
    proc.stdin.close()
    proc.stdin = None
    return proc


@dataclass
class Finished:
    code: int
    result: dict[str, Any]
    stderr: str
    lines: list[dict[str, Any]] = field(default_factory=list)


def finish(proc: subprocess.Popen[bytes], timeout: float = 300) -> Finished:
    out, err = proc.communicate(timeout=timeout)
    stderr = err.decode("utf-8", "replace")
    assert "Traceback" not in stderr, stderr
    lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    assert lines, f"no result; stderr:\n{stderr}"
    return Finished(proc.returncode, lines[-1], stderr, lines)


def run_all(jobs: list[tuple[str, Mapping[str, Any], Mapping[str, str]]]) -> list[Finished]:
    """Start every executor first, then collect: they really run at the same time."""
    procs = [start_executor(executor, spec, env) for executor, spec, env in jobs]
    with ThreadPoolExecutor(max_workers=len(procs)) as pool:
        return list(pool.map(finish, procs))


# -- servers --------------------------------------------------------------------------------------


def pushgateway_binary() -> str:
    """Debian names it prometheus-pushgateway, upstream pushgateway: either will do."""
    return shutil.which("pushgateway") or shutil.which("prometheus-pushgateway") or service_binary("pushgateway")


@dataclass
class Pushgateway:
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Pushgateway:
        # The admin API gives each test an empty gateway (wipe()); no persistence (Debian's build
        # defaults to one system-wide file in /var/lib/prometheus, shared by every instance).
        self.process = subprocess.Popen([pushgateway_binary(), f"--web.listen-address=127.0.0.1:{self.port}",
                                         "--persistence.file=", "--web.enable-admin-api", "--log.level=warn"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until_up(f"{self.url}/-/ready", self.process, "the Pushgateway")
        return self

    def metrics(self) -> list[Sample]:
        """What the Pushgateway serves to Prometheus (its own metrics, and every pushed group)."""
        status, body = http_get(f"{self.url}/metrics")
        assert status == 200, body
        return samples(body.decode())

    def wipe(self) -> None:
        request = urllib.request.Request(f"{self.url}/api/v1/admin/wipe", method="PUT")
        with urllib.request.urlopen(request, timeout=5):
            pass

    def stop(self) -> None:
        stop(self.process)


@dataclass
class MetricsEndpoint:
    """`llm-exec metrics --serve` reading the store that `env` configures."""

    env: Mapping[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def start(self) -> MetricsEndpoint:
        self.process = subprocess.Popen(
            [str(BIN_DIR / "llm-exec"), "metrics", "--serve", "--port", str(self.port), "--host", "127.0.0.1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(self.env))
        wait_until_up(self.url, self.process, "llm-exec metrics --serve")
        return self

    def scrape(self) -> list[Sample]:
        status, body = http_get(self.url)
        assert status == 200, body
        return samples(body.decode())

    def stop(self) -> None:
        stop(self.process)


@dataclass
class Prometheus:
    """A Prometheus server on loopback: 1 s scrape interval, a temporary config and storage."""

    directory: Path
    targets: dict[str, tuple[str, bool]]  # job -> (host:port, honor_labels)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Prometheus:
        binary = service_binary("prometheus")
        jobs = [{"job_name": job, "honor_labels": honor, "static_configs": [{"targets": [target]}]}
                for job, (target, honor) in self.targets.items()]
        config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                  "scrape_configs": jobs}
        self.directory.mkdir(parents=True, exist_ok=True)
        config_path = self.directory / "prometheus.yml"
        config_path.write_text(json.dumps(config))  # JSON is YAML
        self.process = subprocess.Popen(
            [binary, f"--config.file={config_path}", f"--storage.tsdb.path={self.directory / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=(self.directory / "prometheus.log").open("wb"))
        wait_until_up(f"{self.url}/-/ready", self.process, "Prometheus")
        return self

    def query(self, promql: str) -> list[dict[str, Any]]:
        status, body = http_get(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", answer
        return answer["data"]["result"]

    def value(self, promql: str) -> float | None:
        """The one value of an instant query, None when it has no result."""
        result = self.query(promql)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, promql: str, expected: float, timeout: float = 30.0, tolerance: float = 1e-9) -> float:
        """Poll until the query gives `expected` (scrapes come every second); the last value seen."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.value(promql)
            if value is not None and abs(value - expected) <= tolerance * max(1.0, abs(expected)):
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{promql} = {value}, expected {expected} (after {timeout:g} s)")
            time.sleep(0.25)

    def stop(self) -> None:
        stop(self.process)
