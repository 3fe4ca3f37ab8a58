"""Running agents: one executor subprocess per attempt, failover along the ranking, consensus.

An attempt spawns `llm-exec-<executor>` with the agent's defaults merged under the task (the task's
fields win), `agent` set to the agent's name and `timeout_seconds` set to what is left of the route's
deadline. Its stderr is inherited; its stdout is read line by line: delta lines are relayed as
they arrive, the last line is its result. Whatever happens to the child, an attempt ends with one
result object (one is synthesised when the child wrote none).

Failover follows the exit-code contract: 1 (execution error) and 2 (that agent's configuration)
move on to the next agent; 3 (the task itself) stops. So does a stream that already wrote deltas,
a signal, and the deadline. One exit 3 is the model's limit rather than the task's:
context_length_exceeded moves on, but only to agents whose registry context_window is larger than
the failed agent's (rules.context_skip_reason); the attempt's `failover` entry in the trail says
which agents that leaves and which it passes over.

Children run in their own process group, so a terminal's Ctrl-C reaches them once, through us:
SIGINT/SIGTERM received by llm-route are forwarded to every live child, which then writes its
"cancelled" result; no further agent is tried.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..config import Secrets
from ..deadline import Deadline
from ..errors import CancelledError, ConfigurationError, LlmError, TimeoutError
from ..task import TaskSpec
from .catalog import executor_command, program
from .facts import provider_class
from .registry import Agent, Registry
from .rules import CONTEXT_LENGTH_EXCEEDED, Decision, context_skip_reason

# After the route's deadline the executor (told the same deadline) should already have answered;
# this long past it, it gets SIGTERM (and writes a result), and this long after that, SIGKILL.
GRACE_SECONDS = 2.0
KILL_AFTER_SECONDS = 2.0
# Less time than this left is not worth a process start.
MIN_ATTEMPT_SECONDS = 0.05

Relay = Callable[[str], None]


@dataclass
class Attempt:
    """One agent's run: the result its executor wrote (or one made for it) and whether it streamed."""

    agent: Agent
    result: dict[str, Any]
    streamed: bool = False
    # What the failover made of this attempt's context_length_exceeded (shown in `route.tried`).
    failover: dict[str, Any] | None = None

    @property
    def exit_code(self) -> int:
        return int(self.result["exit_code"])

    @property
    def error_type(self) -> str | None:
        error = self.result.get("error")
        return error.get("type") if isinstance(error, dict) else None

    def tried(self) -> dict[str, Any]:
        entry = {"agent": self.agent.name, "exit_code": self.exit_code, "error_type": self.error_type}
        if self.failover is not None:
            entry["failover"] = self.failover
        return entry

    def cost_usd(self) -> float | None:
        """The executor's cost, else the registry's stated price times the reported tokens."""
        cost = self.result.get("cost_usd")
        if cost is not None:
            return float(cost)
        price = self.agent.price_per_mtok
        prompt, completion = self.result.get("prompt_tokens"), self.result.get("completion_tokens")
        if price is None or prompt is None or completion is None:
            return None
        return round((prompt * price.input + completion * price.output) / 1_000_000, 10)


@dataclass
class Supervisor:
    """The live children, and the signals to forward to them."""

    program: str
    secrets: Secrets
    received: list[int] = field(default_factory=list)
    # False until agents run: before that a signal cancels llm-route itself; after, it is forwarded.
    spawning: bool = False
    # Work that can wait until an executor is starting: it then runs while the child boots (on the
    # other core) instead of delaying the spawn. Run once, by the first attempt.
    deferred: list[Callable[[], object]] = field(default_factory=list)
    # llm-route's spans (telemetry.tracing.RouteTrace) when OTEL_* variables ask for traces, else None.
    trace: Any = None
    _children: set[subprocess.Popen[bytes]] = field(default_factory=set)
    # Re-entrant: the signal handler runs on the main thread, possibly while it holds the lock.
    _lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def cancelled(self) -> bool:
        return bool(self.received)

    @contextmanager
    def forwarding_signals(self) -> Iterator[None]:
        try:
            previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        except ValueError:  # not the main thread: signals stay with the caller
            yield
            return
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.received.append(signum)
        if not self.spawning:
            # Still reading the task or deciding: stop right there, with a "cancelled" result.
            raise CancelledError(f"cancelled by {signal.Signals(signum).name}")
        with self._lock:
            children = list(self._children)
        for child in children:
            _send(child, signum)

    def spawn(self, argv: list[str], env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        with self._lock:
            # process_group=0: the child's own group, so a terminal's Ctrl-C reaches it only through us.
            child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, process_group=0,
                                     env=None if env is None else {**os.environ, **env})
            self._children.add(child)
        if self.received:  # a signal arrived while it was starting
            _send(child, self.received[-1])
        return child

    def run_deferred(self) -> None:
        with self._lock:
            work, self.deferred = self.deferred, []
        for item in work:
            item()

    def release(self, child: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._children.discard(child)

    def log(self, message: str) -> None:
        try:
            sys.stderr.write(self.secrets.redact(f"{self.program}: {message}\n"))
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


def _send(child: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(OSError):  # it has just exited
        child.send_signal(signum)


def child_spec(task: TaskSpec, agent: Agent, remaining: float, *, stream: bool | None = None) -> dict[str, Any]:
    """The spec the agent's executor receives. Routing fields stay in: the task schema accepts them
    and executors ignore them, so the child sees exactly what the caller wrote."""
    spec = {**agent.spec_defaults(), **task.raw, "agent": agent.name,
            "timeout_seconds": round(max(remaining, MIN_ATTEMPT_SECONDS), 3)}
    if stream is not None:
        spec["stream"] = stream
    return spec


def synthetic_result(agent: Agent, spec: dict[str, Any], model: str | None, elapsed: float, error: LlmError,
                     partial_output: str | None = None) -> dict[str, Any]:
    """A result for an attempt whose executor could not give one (not found, crashed, overran)."""
    from ..result import build_result

    return build_result(provider=provider_class(agent.executor).name, task=spec, model=model, elapsed=elapsed,
                         attempts=0, error=error, partial_output=partial_output)


def protection_env(registry: Registry, agent: Agent) -> dict[str, str]:
    """The agent's shared-state limits, for its executor (which enforces them across processes):
    rate limits and the agent's and registry's budget caps."""
    env = {}
    if agent.rpm:
        env["LLM_EXEC_RPM"] = str(agent.rpm)
    if agent.tpm:
        env["LLM_EXEC_TPM"] = str(agent.tpm)
    caps = registry.budget_caps(agent)
    if caps:
        env["LLM_EXEC_BUDGETS"] = json.dumps(caps)
    return env


def run_attempt(agent: Agent, task: TaskSpec, model: str, *, deadline: Deadline, supervisor: Supervisor,
                relay: Relay | None = None, stream: bool | None = None,
                env: Mapping[str, str] | None = None) -> Attempt:
    if supervisor.trace is None:
        return _run_attempt(agent, task, model, deadline=deadline, supervisor=supervisor, relay=relay,
                            stream=stream, env=env)
    # Traced: this attempt's span id goes to the executor as TRACEPARENT, so its call span is a child.
    span = supervisor.trace.agent(agent.name, agent.type, model)
    attempt = _run_attempt(agent, task, model, deadline=deadline, supervisor=supervisor, relay=relay,
                           stream=stream, env={**(env or {}), **supervisor.trace.child_env(span)})
    supervisor.trace.agent_done(span, attempt.result)
    return attempt


def _run_attempt(agent: Agent, task: TaskSpec, model: str, *, deadline: Deadline, supervisor: Supervisor,
                 relay: Relay | None, stream: bool | None, env: Mapping[str, str] | None) -> Attempt:
    started = time.monotonic()
    spec = child_spec(task, agent, deadline.remaining(), stream=stream)
    name = program(agent.executor)
    if deadline.remaining() < MIN_ATTEMPT_SECONDS:
        error = TimeoutError("the route's deadline (timeout_seconds) passed before this agent could start")
        return Attempt(agent, synthetic_result(agent, spec, model, 0.0, error))
    try:
        child = supervisor.spawn(executor_command(agent.executor), env)
    except ConfigurationError as exc:
        return Attempt(agent, synthetic_result(agent, spec, model, time.monotonic() - started, exc))
    except OSError as exc:
        error = ConfigurationError(f"cannot start {name}: {exc.strerror or exc}", field="type",
                                   error_type="executor_not_found")
        return Attempt(agent, synthetic_result(agent, spec, model, time.monotonic() - started, error))
    overran = threading.Event()
    timer = threading.Timer(max(0.0, deadline.remaining()) + GRACE_SECONDS, _stop, (child, overran))
    timer.daemon = True
    timer.start()
    streamed = False
    last: Any = None
    try:
        _feed(child, json.dumps(spec).encode("utf-8"))
        supervisor.run_deferred()
        assert child.stdout is not None
        for raw in child.stdout:
            line = _parse(raw)
            if isinstance(line, dict) and line.get("type") == "delta" and isinstance(line.get("text"), str):
                if relay is not None:
                    relay(line["text"])
                    streamed = True
            elif raw.strip():
                last = line
        code = child.wait()
    finally:
        timer.cancel()
        supervisor.release(child)
    elapsed = time.monotonic() - started
    if overran.is_set():
        error: LlmError = TimeoutError(f"the route's deadline (timeout_seconds) passed; {name} was stopped")
        partial = last.get("output") if isinstance(last, dict) else None
        return Attempt(agent, synthetic_result(agent, spec, model, elapsed, error, partial), streamed)
    if _is_result(last):
        return Attempt(agent, last, streamed)
    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    error = LlmError(f"{name} {how} without writing a result", error_type="executor_failed")
    return Attempt(agent, synthetic_result(agent, spec, model, elapsed, error), streamed)


def _feed(child: subprocess.Popen[bytes], data: bytes) -> None:
    assert child.stdin is not None
    try:
        child.stdin.write(data)
        child.stdin.close()
    except BrokenPipeError:
        pass  # the child exited before reading its input; its exit says why


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _is_result(value: Any) -> bool:
    return isinstance(value, dict) and value.get("exit_code") in (0, 1, 2, 3) and "status" in value


def _stop(child: subprocess.Popen[bytes], overran: threading.Event) -> None:
    if child.poll() is not None:
        return  # it finished just in time
    overran.set()
    _send(child, signal.SIGTERM)
    try:
        child.wait(KILL_AFTER_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()


# -- failover ------------------------------------------------------------------------------------


def run_failover(decision: Decision, task: TaskSpec, *, deadline: Deadline, supervisor: Supervisor,
                 relay: Relay | None, stream: bool | None = None) -> list[Attempt]:
    """Try the agents in failover order until one succeeds or failing over cannot help."""
    attempts: list[Attempt] = []
    order = list(decision.failover)
    floor: int | None = None  # after a context_length_exceeded: the largest window a prompt did not fit
    for position, name in enumerate(order):
        if supervisor.cancelled or (attempts and deadline.remaining() < MIN_ATTEMPT_SECONDS):
            break
        evaluation = decision.evaluation(name)
        if floor is not None and (skip := context_skip_reason(evaluation.agent, floor)) is not None:
            supervisor.log(f"agent {name}: not tried after context_length_exceeded: {skip}")
            continue
        attempt = run_attempt(evaluation.agent, task, evaluation.model, deadline=deadline, supervisor=supervisor,
                              relay=relay, stream=stream, env=protection_env(decision.registry, evaluation.agent))
        attempts.append(attempt)
        stop = _stop_reason(attempt, supervisor)
        if stop is None and attempt.error_type == CONTEXT_LENGTH_EXCEEDED:
            rest = [decision.evaluation(later).agent for later in order[position + 1:]]
            floor, stop = _context_failover(attempt, floor, rest)
        if stop is not None:
            if attempt.exit_code != 0:
                supervisor.log(f"agent {name}: exit {attempt.exit_code} ({attempt.error_type}); {stop}")
            break
        following = "trying the next agent" if attempt.failover is None else attempt.failover["reason"]
        supervisor.log(f"agent {name}: exit {attempt.exit_code} ({attempt.error_type}); {following}")
    if not attempts:
        raise CancelledError(f"cancelled by {signal.Signals(supervisor.received[-1]).name}"
                             if supervisor.cancelled else "cancelled")
    return attempts


def _context_failover(attempt: Attempt, floor: int | None, rest: Sequence[Agent]) -> tuple[int | None, str | None]:
    """After `attempt` answered context_length_exceeded: the new floor (the window the prompt did
    not fit), and why failover stops, if it does. Records the decision in `attempt.failover`."""
    window = attempt.agent.context_window
    if not rest:  # the last candidate, or failover is off (pinned agent, fallback: false)
        return floor, "no failover"
    if window is None:
        reason = (f"{attempt.agent.name} has no context_window in the registry: no agent is known to be "
                  "larger, no failover")
        attempt.failover = {"reason": reason, "context_window": None, "next": [],
                            "skipped": [agent.name for agent in rest]}
        return floor, reason
    floor = max(window, floor or 0)
    larger = [agent.name for agent in rest if context_skip_reason(agent, floor) is None]
    skipped = [agent.name for agent in rest if agent.name not in larger]
    if larger:
        reason = (f"the prompt does not fit context_window {floor}: trying the agents with a larger one "
                  f"({', '.join(larger)})")
    else:
        reason = f"the prompt does not fit context_window {floor} and no other agent has a larger one: no failover"
    attempt.failover = {"reason": reason, "context_window": floor, "next": larger, "skipped": skipped}
    return floor, None if larger else reason


def _stop_reason(attempt: Attempt, supervisor: Supervisor) -> str | None:
    if attempt.exit_code == 0:
        return "done"
    if attempt.exit_code == 3 and attempt.error_type != CONTEXT_LENGTH_EXCEEDED:
        return "the task itself is invalid: no failover"
    if supervisor.cancelled:
        return "cancelled: no failover"
    if attempt.streamed:
        return "deltas were already written: no failover"
    return None


# -- consensus -----------------------------------------------------------------------------------


def run_consensus(decision: Decision, task: TaskSpec, count: int, *, deadline: Deadline,
                  supervisor: Supervisor) -> tuple[list[Attempt], dict[str, Any]]:
    """Run the top `count` candidates in parallel; a failed one (exit 1/2) is replaced by the next
    candidate in a further wave, while failover is allowed. Returns the attempts in ranking order
    and the verdict over the successful outputs."""
    from .consensus import verdict  # deferred: difflib and unicodedata, for consensus runs only

    if len(decision.ranking) < count:
        raise ConfigurationError(
            f"--consensus {count} needs {count} candidate agents; {len(decision.ranking)} qualify "
            f"({', '.join(decision.ranking) or 'none'})",
            field="consensus", error_type="not_enough_agents",
        )
    queue = list(decision.ranking if decision.fallback else decision.ranking[:count])
    attempts: list[Attempt] = []
    while queue and not supervisor.cancelled:
        succeeded = sum(1 for a in attempts if a.exit_code == 0)
        wave, queue = queue[: count - succeeded], queue[count - succeeded:]
        if not wave or (attempts and deadline.remaining() < MIN_ATTEMPT_SECONDS):
            break
        attempts.extend(_parallel(decision, task, wave, deadline, supervisor))
        if any(a.exit_code == 3 for a in attempts) or not decision.fallback:
            break
    order = {name: index for index, name in enumerate(decision.ranking)}
    attempts.sort(key=lambda a: order[a.agent.name])
    successes = [(a.agent.name, a.result.get("output") or "") for a in attempts if a.exit_code == 0]
    costs = [c for c in (a.cost_usd() for a in attempts) if c is not None]
    summary = {
        "requested": count,
        "agents": [a.agent.name for a in attempts],
        "results": [_summary(a) for a in attempts],
        **verdict(successes),
        "combined_cost_usd": round(sum(costs), 10) if costs else None,
    }
    return attempts, summary


def _parallel(decision: Decision, task: TaskSpec, names: Sequence[str], deadline: Deadline,
              supervisor: Supervisor) -> list[Attempt]:
    results: dict[str, Attempt] = {}
    failures: list[BaseException] = []

    def work(name: str) -> None:
        evaluation = decision.evaluation(name)
        try:
            results[name] = run_attempt(evaluation.agent, task, evaluation.model, deadline=deadline,
                                        supervisor=supervisor, stream=False,
                                        env=protection_env(decision.registry, evaluation.agent))
        except BaseException as exc:  # a bug of ours: re-raised on the main thread below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(name,), name=f"llm-route-{name}", daemon=True) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return [results[name] for name in names if name in results]


def _summary(attempt: Attempt) -> dict[str, Any]:
    result = attempt.result
    return {
        "agent": attempt.agent.name,
        "provider": result.get("provider"),
        "model": result.get("model"),
        "status": result.get("status"),
        "exit_code": attempt.exit_code,
        "error_type": attempt.error_type,
        "output": result.get("output"),
        "tokens_used": result.get("tokens_used"),
        "cost_usd": attempt.cost_usd(),
    }
