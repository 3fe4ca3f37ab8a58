"""Shared plumbing of the benchmark harness: processes measured with wait4, the emulator in its
own process, the environment every executor runs in, and the separate venv for the rivals."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the project venv: the harness runs under its python
BENCH_VENV = ROOT / ".bench-venv"
# The tools users would pick instead: installed here only, never into the project venv.
RIVALS = ("llm==0.36", "litellm==1.110.2")
# Every executor answers one task the same way.
TASK = b'{"task_id": "bench", "prompt": "Say hello", "max_tokens": 20}'


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds
    cpu: float  # user + sys seconds of the child
    maxrss_mb: float
    code: int


def measure(argv: Sequence[str], env: dict[str, str], stdin: bytes | Path | None = None,
            stdout: Path | None = None) -> Sample:
    """Run argv once: wall time, CPU time and peak RSS of that child alone (wait4)."""
    with tempfile.TemporaryFile() as fed, open(stdout or os.devnull, "wb") as sink:
        if isinstance(stdin, Path):
            source = open(stdin, "rb")  # noqa: SIM115 - closed below
        else:
            fed.write(stdin or b"")
            fed.seek(0)
            source = fed
        try:
            started = time.perf_counter()
            proc = subprocess.Popen(list(argv), stdin=source, stdout=sink, stderr=subprocess.DEVNULL, env=env)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
        finally:
            if source is not fed:
                source.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


@contextmanager
def emulator(latency_ms: float = 0) -> Iterator[str]:
    """The bundled emulator in its own process (its CPU is not the measured process's); yields its URL."""
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        proc = subprocess.Popen([str(BIN / "llm-exec-emulator"), "--latency-ms", str(latency_ms),
                                 "--port-file", str(port_file)], stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not port_file.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the emulator did not start")
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port_file.read_text().strip()}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@contextmanager
def warm_daemon(env: dict[str, str], directory: Path) -> Iterator[str]:
    """An llm-exec-daemon on a private socket in `directory`, started with `env` (as
    scripts/bench_daemon.py starts its own); yields the socket path (point LLM_EXEC_DAEMON at it)
    and stops the daemon afterwards."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_daemon import start_daemon

    socket_path = str(directory / "daemon.sock")
    proc = start_daemon(socket_path, str(directory / "daemon.log"), env)
    try:
        yield socket_path
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def executor_env(url: str, workdir: Path) -> dict[str, str]:
    """Every provider pointed at `url`, state and caches in `workdir`, and no warm daemon: these
    are the in-process one-shot numbers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_EXEC_", "OPENAI_", "ANTHROPIC_"))}
    env.update({
        "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "bench-key-0123",
        "OPENAI_BASE_URL": f"{url}/v1", "OPENAI_API_KEY": "bench-key-0123",
        "GOOGLE_GEMINI_BASE_URL": url, "GOOGLE_API_KEY": "bench-key-0123",
        "OLLAMA_HOST": url, "LLM_EXEC_CUSTOM_ENDPOINT": f"{url}/custom", "LLM_EXEC_CUSTOM_API_KEY": "bench-key-0123",
        "LLM_EXEC_STATE_DIR": str(workdir / "state"), "XDG_CACHE_HOME": str(workdir / "cache"),
        "LLM_EXEC_DAEMON": "off",
    })
    # A user's shell, not this tool's: bytecode is cached (see compile_package) and output buffered as usual.
    for name in ("GEMINI_API_KEY", "GOOGLE_GENAI_API_KEY", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy",
                 "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"):
        env.pop(name, None)
    return env


def compile_package() -> None:
    """Byte-compile llm_exec, as installing a wheel does: an editable install whose .pyc files are
    stale would otherwise compile our modules again on every executor start."""
    import compileall

    compileall.compile_dir(str(ROOT / "llm_exec"), quiet=1)


def bench_python() -> Path:
    """The python of .bench-venv, created (and the rivals installed from PyPI) when missing."""
    python = BENCH_VENV / "bin" / "python"
    stamp = BENCH_VENV / ".installed"
    wanted = "\n".join(RIVALS)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    log(f"creating {BENCH_VENV.name}/ with {', '.join(RIVALS)} (once)")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    result = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *RIVALS],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(RIVALS)} failed:\n{result.stderr[-2000:]}")
    stamp.write_text(wanted)
    return python


def installed_version(python: Path, package: str) -> str:
    out = subprocess.run([str(python), "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip() or "?"


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)
