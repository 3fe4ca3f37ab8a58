"""The warm path: executors forwarding to llm-exec-daemon keep the contract, byte for byte.

Every scenario runs both ways, through a daemon this module starts on a private socket and
in-process (LLM_EXEC_DAEMON=off), and the daemon's log proves which way each call went.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from llm_exec.daemon.lifecycle import answering_pid
from llm_exec.daemon.protocol import HEADER_SIZE, MAGIC, TaskRequest, encode_request, identity, socket_path
from llm_exec.emulator import Emulator, expected_reply

from .conftest import BIN_DIR, EXECUTORS, PROVIDER_OF, TEST_KEYS, Run, emulator_env, run_executor, subprocess_env
from .test_hardening import read_lines, spawn, wait_for_request

SPEC = {"task_id": "d-1", "agent": "warm", "prompt": "Name three primes please", "max_tokens": 50,
        "metadata": {"ticket": "W-1"}}
# What differs between two runs of the same task, whichever way they run.
VOLATILE = ("timestamp", "execution_time_seconds", "request_id")
DAEMON_BIN = str(BIN_DIR / "llm-exec-daemon")


class Daemon:
    """An llm-exec-daemon in the foreground on a private socket, logging to a file."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.socket = str(directory / "daemon.sock")
        self.log = directory / "daemon.log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([DAEMON_BIN, "--foreground", "--socket", self.socket], env=env,
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while answering_pid(self.socket) != self.process.pid:
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "the daemon did not start within 60 s"
            time.sleep(0.05)

    def served(self) -> int:
        """Tasks the daemon has run to their end (one log line each, written when it reaps the
        task), counted once it has settled: every task it started has ended and been logged.

        Reading the log alone would race: a task reports its exit code to its caller itself, and
        the caller exits before the task's process is gone, so the daemon reaps and logs it a moment
        later (milliseconds, more on a busy machine). A count read in that moment misses a call an
        earlier test made, and the next count, taken after a test's calls, then finds one more."""
        self.settle()
        return sum(" exit " in line for line in self.log.read_text().splitlines())

    def has_served(self, count: int) -> bool:
        return self.served() >= count

    def settle(self, within: float = 30.0) -> None:
        """Wait until the daemon has no task process left (running, or exited and not yet reaped),
        then until it has finished handling their exits (logged them)."""
        deadline = time.monotonic() + within
        while tasks := self.tasks():
            assert time.monotonic() < deadline, f"tasks {tasks} still running after {within:.0f} s"
            time.sleep(0.005)
        self.round_trip()

    def tasks(self) -> list[int]:
        """The daemon's child processes, zombies included: its tasks it has not reaped yet."""
        children = []
        for stat_file in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat_file.read_text().rpartition(")")[2].split()
            except OSError:  # the process ended meanwhile
                continue
            if fields and int(fields[1]) == self.process.pid:
                children.append(int(stat_file.parent.name))
        return children

    def round_trip(self) -> None:
        """Send the daemon a request it refuses and wait for the refusal. The daemon is one thread,
        and reaping a task and logging it is one step of its loop: a task already reaped when this
        starts is in the log once the refusal arrives."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(30)
            client.connect(self.socket)
            client.sendall(b"settle\0\0")  # a header without the magic
            assert client.makefile("rb").readline().startswith(b"refused "), "the daemon did not answer"

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def daemon_env() -> dict[str, str]:
    # Keys and endpoints of the daemon's own: a task must never see them (its caller's replace them).
    return {**subprocess_env(), "OPENAI_API_KEY": "daemon-own-key-0123456789", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
            "LLM_EXEC_DAEMON": "off"}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    warm = Daemon(tmp_path_factory.mktemp("daemon"), daemon_env())
    yield warm
    assert warm.stop() == 0
    assert "Traceback" not in warm.log.read_text(), warm.log.read_text()


@pytest.fixture(params=["in-process", "daemon"])
def way(request: pytest.FixtureRequest, daemon: Daemon, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test's executors one way, and check that they did run that way."""
    monkeypatch.setenv("LLM_EXEC_DAEMON", daemon.socket if request.param == "daemon" else "off")
    before = daemon.served()
    yield request.param
    if request.param == "daemon":
        assert daemon.has_served(before + 1), "the daemon served none of this test's calls"
    else:
        assert daemon.served() == before, "the daemon served a call made with LLM_EXEC_DAEMON=off"


@pytest.fixture
def through_daemon(daemon: Daemon, monkeypatch: pytest.MonkeyPatch) -> Daemon:
    monkeypatch.setenv("LLM_EXEC_DAEMON", daemon.socket)
    return daemon


def stable(run: Run) -> dict[str, Any]:
    return {name: value for name, value in run.result.items() if name not in VOLATILE}


def run_both_ways(daemon: Daemon, monkeypatch: pytest.MonkeyPatch, executor: str, spec: Any,
                  **kwargs: Any) -> tuple[Run, Run]:
    monkeypatch.setenv("LLM_EXEC_DAEMON", "off")
    direct = run_executor(executor, spec, **kwargs)
    monkeypatch.setenv("LLM_EXEC_DAEMON", daemon.socket)
    before = daemon.served()
    warm = run_executor(executor, spec, **kwargs)
    assert daemon.has_served(before + 1)
    return direct, warm


# -- same contract, same output ----------------------------------------------------------------


@pytest.mark.parametrize("executor", EXECUTORS)
def test_success_is_the_same_both_ways(executor: str, daemon: Daemon, emulator: Emulator,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    direct, warm = run_both_ways(daemon, monkeypatch, executor, SPEC, url=emulator.url)
    assert (direct.code, warm.code) == (0, 0), warm.stderr
    assert stable(warm) == stable(direct)
    assert warm.result["provider"] == PROVIDER_OF[executor]
    assert warm.stderr == direct.stderr == ""
    assert len(emulator.requests()) == 2


@pytest.mark.parametrize(("executor", "spec", "script"), [
    ("claude", SPEC, [{"status": 401}]),
    ("gemini", SPEC, [{"status": 401}]),
    ("gpt", {**SPEC, "max_tokens": -1}, []),
    ("llama", b"{not json", []),
], ids=["401-claude", "401-gemini", "bad-spec-gpt", "bad-json-llama"])
def test_failures_are_the_same_both_ways(executor: str, spec: Any, script: list[dict[str, Any]], daemon: Daemon,
                                         emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    emulator.script(script + script)
    raw = spec if isinstance(spec, bytes) else None
    direct, warm = run_both_ways(daemon, monkeypatch, executor, spec, url=emulator.url, raw_input=raw)
    assert warm.code == direct.code == (2 if script else 3)
    assert stable(warm) == stable(direct)
    assert warm.stderr == direct.stderr  # the same diagnostics, redacted the same way


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("--dry-run",), ("--schema", "task"), ("--bogus",)])
def test_flags_are_the_same_both_ways(args: tuple[str, ...], daemon: Daemon, emulator: Emulator) -> None:
    outputs = []
    for setting in ("off", daemon.socket):
        before = daemon.served()
        done = subprocess.run([str(BIN_DIR / "llm-exec-gpt"), *args], input=json.dumps(SPEC).encode(),
                              capture_output=True, check=False,
                              env={**subprocess_env(), "OPENAI_API_KEY": TEST_KEYS["OPENAI_API_KEY"],
                                   "OPENAI_BASE_URL": f"{emulator.url}/v1", "LLM_EXEC_DAEMON": setting})
        assert daemon.served() == before if setting == "off" else daemon.has_served(before + 1)
        outputs.append((done.returncode, done.stdout, done.stderr))
    direct, warm = outputs
    if args == ("--bogus",):  # the result carries a timestamp and a timing
        assert (warm[0], json.loads(warm[1])["error"]) == (direct[0], json.loads(direct[1])["error"])
    else:
        assert warm == direct
    assert emulator.requests() == []


@pytest.mark.parametrize("executor", ["gpt", "claude"])
def test_stream_deltas_arrive_as_they_are_produced(executor: str, way: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with Emulator(chunk_delay_ms=150) as emu:
        proc = spawn(executor, {**SPEC, "stream": True}, {**subprocess_env(), **emulator_env(emu.url)})
        assert proc.stdout is not None
        arrivals = [(time.monotonic(), json.loads(line)) for line in proc.stdout]
        proc.wait(timeout=10)
    *deltas, (_, result) = arrivals
    assert proc.returncode == 0 and result["status"] == "success"
    assert len(deltas) > 3 and "".join(line["text"] for _, line in deltas) == result["output"]
    text, _ = expected_reply(PROVIDER_OF[executor], SPEC["prompt"], max_tokens=50)
    assert result["output"] == text
    # Passed through as produced (a chunk every 150 ms), not collected and written at the end.
    assert deltas[-1][0] - deltas[0][0] > 0.1 * len(deltas)


# -- the caller's environment, per task ----------------------------------------------------------


def test_each_task_gets_its_callers_keys_and_endpoints(through_daemon: Daemon) -> None:
    with Emulator() as first, Emulator() as second:
        calls = [(first, "key-first-0123456789"), (second, "key-second-0123456789"), (first, None)]
        runs = [run_executor("gpt", SPEC, env={"OPENAI_BASE_URL": f"{emu.url}/v1", "OPENAI_API_KEY": key})
                for emu, key in calls]
        assert [run.code for run in runs] == [0, 0, 2]
        # Neither the previous task's key nor the daemon's own one reached the keyless task.
        assert runs[2].result["error"]["type"] == "missing_api_key"
        assert (len(first.requests()), len(second.requests())) == (1, 1)


def test_concurrent_tasks_keep_their_own_environment(through_daemon: Daemon) -> None:
    with Emulator() as first, Emulator() as second:
        targets = [(first, "key-first-0123456789"), (second, "key-second-0123456789"), (second, None)] * 4

        def call(index: int) -> Run:
            emu, key = targets[index]
            spec = {**SPEC, "task_id": f"c-{index}", "prompt": f"number {index}"}
            return run_executor("gpt", spec, env={"OPENAI_BASE_URL": f"{emu.url}/v1", "OPENAI_API_KEY": key})

        with ThreadPoolExecutor(max_workers=len(targets)) as pool:
            runs = list(pool.map(call, range(len(targets))))
        for index, run in enumerate(runs):
            assert run.result["task_id"] == f"c-{index}"
            if targets[index][1] is None:
                assert (run.code, run.result["error"]["type"]) == (2, "missing_api_key")
            else:
                assert run.code == 0 and run.result["output"].endswith(f"number {index}")
        assert len(first.requests()) == 4 and len(second.requests()) == 4


def test_caches_follow_the_callers_environment(through_daemon: Daemon, emulator: Emulator, tmp_path: Path) -> None:
    """State the one-shot code keeps per process (here the price card's place) is the caller's,
    never the one the daemon's warm-up or a previous task saw."""
    for name in ("first", "second"):
        cache = tmp_path / name
        run = run_executor("gpt", {**SPEC, "model": "gpt-4o-mini"}, url=emulator.url,
                           env={"XDG_CACHE_HOME": str(cache)})
        assert run.code == 0 and run.result["cost_usd"] is not None
        assert "openai/gpt-4o-mini" in json.loads((cache / "llm-exec" / "rates.json").read_text())["rates"]


def test_the_deadline_counts_from_the_callers_start(way: str, emulator: Emulator) -> None:
    """The executor's process starts, spends 1.5 s before its first line of Python (here a sleep,
    then exec, which keeps the process), and has 3 s in all: 1.5 s are left for the request."""
    emulator.script([{"fault": "stall", "seconds": 30}])
    late_start = "import os, sys, time; time.sleep(1.5); os.execv(sys.argv[1], sys.argv[1:])"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", late_start, str(BIN_DIR / "llm-exec-gpt")],
                          input=json.dumps({**SPEC, "timeout_seconds": 3}).encode(), capture_output=True,
                          env={**subprocess_env(), **emulator_env(emulator.url)}, timeout=30, check=False)
    elapsed = time.monotonic() - started
    result = json.loads(done.stdout)
    assert done.returncode == 1 and result["error"]["type"] in ("timeout", "read_timeout")
    assert 2.9 < elapsed < 3.9, elapsed
    assert result["execution_time_seconds"] >= 2.9


# -- signals and the caller's end ----------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_the_caller_cancels_the_task_within_2s(signum: int, through_daemon: Daemon,
                                                          emulator: Emulator) -> None:
    emulator.script([{"fault": "stall", "seconds": 60}])
    before = through_daemon.served()
    proc = spawn("claude", SPEC, {**subprocess_env(), **emulator_env(emulator.url)})
    wait_for_request(emulator)
    sent = time.monotonic()
    proc.send_signal(signum)
    lines, err = read_lines(proc)
    assert time.monotonic() - sent < 2.0
    assert len(lines) == 1, lines
    result = lines[0]
    assert (proc.returncode, result["status"], result["error"]["type"]) == (1, "cancelled", "cancelled")
    assert signal.Signals(signum).name in result["error"]["message"]
    assert "Traceback" not in err
    assert through_daemon.has_served(before + 1)


def test_a_caller_killed_outright_cancels_its_task(through_daemon: Daemon, emulator: Emulator) -> None:
    emulator.script([{"fault": "stall", "seconds": 60}])
    before = through_daemon.served()
    proc = spawn("gpt", SPEC, {**subprocess_env(), **emulator_env(emulator.url)})
    wait_for_request(emulator)
    proc.kill()  # SIGKILL: nothing is relayed; the daemon sees the connection close
    lines, _ = read_lines(proc)  # the task still writes its result to the (inherited) stdout
    assert lines and lines[-1]["status"] == "cancelled"
    assert through_daemon.has_served(before + 1), "the orphaned task still runs"


# -- the wire format and the socket's place -------------------------------------------------------


def test_a_request_carries_argv_and_environment_exactly() -> None:
    argv = ["llm-exec-gpt", "--input", "a file with spaces ü.json", os.fsdecode(b"raw-\xff")]
    environ = {b"KEY": b"a=b=c", b"EMPTY": b"", b"BYTES": b"\xfe\xff", b"LLM_EXEC_DAEMON": b"/x.sock"}
    frame = encode_request("gpt", "llm-exec-gpt", argv, b"/some/cwd", 0o027, environ)
    assert frame.startswith(MAGIC) and int.from_bytes(frame[len(MAGIC):HEADER_SIZE], "big") == len(frame) - HEADER_SIZE
    request = TaskRequest(frame[HEADER_SIZE:])
    assert (request.identity, request.executor, request.program) == (identity(), "gpt", "llm-exec-gpt")
    assert (request.argv, request.environ, request.cwd, request.umask) == (argv, environ, b"/some/cwd", 0o027)


def test_where_the_socket_is() -> None:
    uid = os.getuid()
    assert socket_path({"LLM_EXEC_DAEMON": "/run/x.sock", "XDG_RUNTIME_DIR": "/run/user/7"}) == "/run/x.sock"
    assert socket_path({"XDG_RUNTIME_DIR": "/run/user/7"}) == "/run/user/7/llm-exec/daemon.sock"
    assert socket_path({"LLM_EXEC_DAEMON": ""}) == f"/tmp/llm-exec-{uid}/daemon.sock"
    assert socket_path({"LLM_EXEC_DAEMON": "off", "XDG_RUNTIME_DIR": "/run/user/7"}) is None


# -- fallback and lifecycle ----------------------------------------------------------------------


def test_no_daemon_means_in_process(tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(stale))  # closed without unlink: a socket file nothing listens on
    for path in (tmp_path / "missing.sock", stale):
        monkeypatch.setenv("LLM_EXEC_DAEMON", str(path))
        run = run_executor("gpt", SPEC, url=emulator.url)
        assert run.code == 0 and run.stderr == ""


def test_a_request_from_another_installation_is_refused(daemon: Daemon) -> None:
    body = b"\0".join([b"0.0.0:/elsewhere:/other/venv", b"gpt", b"llm-exec-gpt", b"/", b"18", b"1", b"llm-exec-gpt"])
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client, open(os.devnull, "r+b") as null:
        client.connect(daemon.socket)
        frame = MAGIC + len(body).to_bytes(HEADER_SIZE - len(MAGIC), "big") + body
        socket.send_fds(client, [frame], [null.fileno()] * 3)
        reply = client.makefile("rb").readline()
    assert reply.startswith(b"refused serves "), reply


def test_socket_is_private(daemon: Daemon) -> None:
    mode = os.stat(daemon.socket).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600


def test_a_second_daemon_refuses_to_start(daemon: Daemon) -> None:
    done = subprocess.run([DAEMON_BIN, "--foreground", "--socket", daemon.socket], capture_output=True, timeout=30,
                          env=daemon_env(), check=False)
    assert done.returncode == 1
    assert f"already running (pid {daemon.process.pid})" in done.stderr.decode()
    assert answering_pid(daemon.socket) == daemon.process.pid


def test_stopping_replaces_stale_socket_and_cancels_running_tasks(tmp_path: Path, emulator: Emulator,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "daemon.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(stale))
    own = Daemon(tmp_path, daemon_env())  # starts on the stale socket's path
    monkeypatch.setenv("LLM_EXEC_DAEMON", own.socket)
    emulator.script([{"fault": "stall", "seconds": 60}])
    proc = spawn("gpt", SPEC, {**subprocess_env(), **emulator_env(emulator.url)})
    wait_for_request(emulator)
    assert own.stop() == 0
    lines, _ = read_lines(proc)
    assert proc.returncode == 1 and [line["status"] for line in lines] == ["cancelled"]
    assert "SIGTERM" in lines[0]["error"]["message"]
    assert not stale.exists(), "the daemon left its socket behind"
    assert "Traceback" not in own.log.read_text(), own.log.read_text()


def test_detached_daemon_status_and_stop(tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "detached.sock")

    def daemon_command(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([DAEMON_BIN, "--socket", path, *args], capture_output=True, text=True, timeout=60,
                              env=daemon_env(), check=False)

    assert daemon_command("--status").returncode == 1
    started = daemon_command()  # returns once the detached daemon listens
    assert started.returncode == 0 and "listening" in started.stderr, started.stderr
    assert daemon_command("--status").returncode == 0
    monkeypatch.setenv("LLM_EXEC_DAEMON", path)
    assert run_executor("claude", SPEC, url=emulator.url).code == 0
    stopped = daemon_command("--stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stderr
    assert not os.path.exists(path) and daemon_command("--status").returncode == 1
    log = Path(f"{path}.log").read_text()
    assert "llm-exec-claude (caller" in log and "Traceback" not in log, log
