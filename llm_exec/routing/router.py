"""One routed task, start to finish: input -> TaskSpec -> registry -> Decision -> executor(s) -> one
result object (the producing executor's, plus `route`) -> exit code.

This is the whole behaviour of `llm-route`; the click commands only parse flags. As with the
executors, every path ends in exactly one JSON object on the output and a 0-3 exit code.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config import Secrets, process_start_monotonic
from ..deadline import Deadline
from ..errors import CancelledError, ConfigurationError, LlmError
from ..task import TaskSpec, parse_task, read_spec
from .catalog import ExecutorCatalog
from .registry import Registry, load_registry
from .rules import Decision, decide
from .spawn import Attempt, Supervisor, run_consensus, run_failover

if TYPE_CHECKING:
    from ..aliases import Alias
    from ..result import Output

PROGRAM = "llm-route"
# Counted from process start, like an executor's timeout_seconds: interpreter start-up is part of it.
PROCESS_START = process_start_monotonic()


@dataclass(frozen=True)
class RouteOptions:
    """What the command line asked for (the flags of `llm-route`)."""

    registry_path: str | None = None
    input_path: str | None = None
    output_path: str | None = None
    explain: bool = False
    consensus: int | None = None
    stream: bool = False
    pretty: bool = False
    program: str = PROGRAM


def _secrets(task: TaskSpec | None, registry: Registry | None) -> Secrets:
    """Every key variable the project knows, plus those the registry and the task name."""
    names = [a.api_key_env for a in registry.agents if a.api_key_env] if registry else []
    if task is not None and task.get("api_key_env"):
        names.append(task.get("api_key_env"))
    return Secrets.from_env(names)


def route(options: RouteOptions) -> int:
    supervisor = Supervisor(options.program, Secrets.from_env())
    made: list[Output] = []

    def output() -> Output:
        """The Output, made on first use with the secrets known by then. llm_exec.result (datetime,
        the response model: ~3 ms) is then imported while the executor starts (Supervisor.deferred),
        instead of before it is spawned."""
        if not made:
            from ..result import Output

            made.append(Output(options.output_path, supervisor.secrets, pretty=options.pretty))
        return made[0]

    task: TaskSpec | None = None
    alias: Alias | None = None
    decision: Decision | None = None
    attempts: list[Attempt] = []
    consensus: dict[str, Any] | None = None
    error: LlmError | None = None
    try:
        with supervisor.forwarding_signals():
            task = parse_task(read_spec(options.input_path))
            supervisor.trace = _route_trace(task)
            registry = load_registry(options.registry_path)
            supervisor.secrets = _secrets(task, registry)
            task, alias = _resolve_alias(task, registry)
            decision = decide(task, registry, ExecutorCatalog(), alias=alias)
            if options.explain:
                output().result(decision.explain(task))
                output().close()
                return 0 if decision.chosen else ConfigurationError.exit_code
            if decision.error:
                raise ConfigurationError(decision.error, field="agent" if decision.pinned else None,
                                         error_type=decision.error_type)
            deadline = Deadline(PROCESS_START + task.timeout_seconds)
            supervisor.spawning = True
            supervisor.deferred.append(output)
            if options.consensus:
                attempts, consensus = run_consensus(decision, task, options.consensus, deadline=deadline,
                                                    supervisor=supervisor)
            else:
                stream = True if options.stream else None
                relay = output().delta if (options.stream or task.stream) else None
                attempts = run_failover(decision, task, deadline=deadline, supervisor=supervisor, relay=relay,
                                        stream=stream)
            if not attempts:
                raise CancelledError("cancelled before any agent ran")
    except LlmError as exc:
        error = exc
    except Exception as exc:  # a bug of ours: still one valid result, and a traceback on stderr
        from ..edge import internal_error

        error = internal_error(exc, supervisor.log)
    if error is not None:
        supervisor.log(f"{error.type}: {error.message} -> exit {error.exit_code}")
        result = failure_result(error, task)
    else:
        result = dict(_final(attempts, consensus is not None))
        _note_registry_aliases(result, alias, decision, supervisor)
    if decision is not None:
        result["route"] = route_info(decision, attempts, consensus)
    output().result(result)
    output().close()
    if supervisor.trace is not None:  # after the result is out: a slow collector never delays it
        supervisor.trace.finish(result, decision, supervisor.secrets)
    return int(result["exit_code"])


def _route_trace(task: TaskSpec) -> Any:
    """llm-route's spans (telemetry.tracing.RouteTrace) when the OTEL_* variables ask for traces;
    None otherwise, and then nothing of tracing is imported."""
    import os

    # Every variable that turns tracing on starts so; without one, not even llm_exec.telemetry (~1 ms
    # of dataclasses) is imported.
    if not any(name.startswith("OTEL_") for name in os.environ):
        return None
    from ..telemetry import tracing_enabled

    if not tracing_enabled():
        return None
    from ..telemetry.tracing import RouteTrace

    started_ns = time.time_ns() - int((time.monotonic() - PROCESS_START) * 1e9)
    return RouteTrace(started_ns, task.get("metadata"))


def _resolve_alias(task: TaskSpec, registry: Registry) -> tuple[TaskSpec, Alias | None]:
    """A task whose model is an alias (the registry's `aliases:` over the user's aliases.yaml) is
    routed as the model it names, to that provider's agents (decide's `alias`)."""
    from ..aliases import load_user_aliases

    alias = registry.aliases.over(load_user_aliases()).resolve(task.get("model"))
    if alias is None:
        return task, None
    return TaskSpec(raw={**task.raw, "model": alias.model}), alias


def _note_registry_aliases(result: dict[str, Any], alias: Alias | None, decision: Decision | None,
                           supervisor: Supervisor) -> None:
    """What the executor could not know: the alias the task used, and the registry's own
    `deprecated:` entry for the model it ran."""
    if alias is not None:
        result.setdefault("model_alias", alias.name)
    model = result.get("model")
    note = decision.registry.aliases.note_for(alias.name if alias else None, model) if decision else None
    if note is None or not isinstance(model, str) or result.get("warnings"):
        return
    from ..models import deprecation_warning

    warning = deprecation_warning(model, note, None)
    supervisor.log(f"warning: {warning['message']}")
    result["warnings"] = [warning]


def _final(attempts: Sequence[Attempt], consensus: bool) -> dict[str, Any]:
    """The result to report: after failover the last attempt's; for consensus the first success in
    ranking order, else the first attempt."""
    if not consensus:
        return attempts[-1].result
    return next((a.result for a in attempts if a.exit_code == 0), attempts[0].result)


def failure_result(error: LlmError, task: TaskSpec | None) -> dict[str, Any]:
    """llm-route's own failure: no agent produced it, so `agent` is null even when the task pins one."""
    from ..result import build_result

    raw = {k: v for k, v in task.raw.items() if k != "agent"} if task else None
    return build_result(provider=PROGRAM, task=raw, model=None, elapsed=time.monotonic() - PROCESS_START,
                        attempts=0, error=error)


def route_info(decision: Decision, attempts: Sequence[Attempt], consensus: dict[str, Any] | None) -> dict[str, Any]:
    """The `route` object: the decision, what was tried, and the estimated and actual cost of the
    agents that ran (estimates from the decision, actual costs as reported)."""
    ran = list(dict.fromkeys(a.agent.name for a in attempts))
    estimates = [c for c in (decision.evaluation(name).cost.usd for name in ran) if c is not None]
    costs = [c for c in (a.cost_usd() for a in attempts) if c is not None]
    info: dict[str, Any] = {
        "chosen": decision.chosen,
        "ranking": list(decision.ranking),
        "tried": [a.tried() for a in attempts],
        "estimated_cost_usd": round(sum(estimates), 10) if estimates else None,
        "actual_cost_usd": round(sum(costs), 10) if costs else None,
        "complexity": decision.complexity.level,
        "registry": decision.registry.path,
        "execution_time_seconds": round(time.monotonic() - PROCESS_START, 4),
    }
    if decision.used_default_agent:
        info["used_default_agent"] = True
    if consensus is not None:
        info["consensus"] = consensus
    return info
