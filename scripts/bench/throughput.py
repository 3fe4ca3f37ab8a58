"""(3) Batch throughput: N tasks as JSONL through one process at concurrency C against the emulator at
latency L (ideal C / L tasks/s): `llm-exec-gpt --batch` and LiteLLM's async batch (`acompletion` under
`asyncio.gather` and a semaphore), on the same emulator and the same tasks, and the emulator's own
ceiling: the same requests from a bare stdlib asyncio client (raw_batch.py).

Two views of each: the whole process as a user runs it (start-up, SDK import and all), and the
steady state. Steady throughput is the rate at which results complete between the 10th and the 90th
percentile of completion times (every result line carries its completion `timestamp`), so neither
the start-up nor the last, draining wave counts; steady CPU takes a one-task run of the same command
off the CPU time."""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from common import (
    BIN,
    ROOT,
    Sample,
    bench_python,
    emulator,
    executor_env,
    installed_version,
    log,
    measure,
    median,
    ms,
    warm_daemon,
)


def tasks_file(path: Path, count: int) -> Path:
    path.write_text("".join(json.dumps({"task_id": f"t{i}", "prompt": f"Task {i}: say hello", "max_tokens": 20}) + "\n"
                            for i in range(count)))
    return path


def successes(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if json.loads(line).get("status") == "success")


def steady_rate(path: Path) -> float:
    """Results per second completed between the 10th and the 90th percentile of completion times."""
    done = sorted(datetime.fromisoformat(json.loads(line)["timestamp"].replace("Z", "+00:00")).timestamp()
                  for line in path.read_text().splitlines())
    first, last = len(done) // 10, len(done) * 9 // 10 - 1
    return (last - first) / max(done[last] - done[first], 1e-9)


def view(full: list[Sample], one: list[Sample], rates: list[float], tasks: int, ideal: float) -> dict[str, Any]:
    wall, cpu = median([s.wall for s in full]), median([s.cpu for s in full])
    wall_1, cpu_1 = median([s.wall for s in one]), median([s.cpu for s in one])
    steady = median(rates)
    return {
        "wall_s": round(wall, 2),
        "tasks_per_s": round(tasks / wall, 1),
        "pct_of_ideal": round(100 * tasks / wall / ideal, 1),
        "cpu_ms_per_task": round(cpu * 1000 / tasks, 2),
        "steady_tasks_per_s": round(steady, 1),
        "steady_pct_of_ideal": round(100 * steady / ideal, 1),
        "steady_cpu_ms_per_task": round((cpu - cpu_1) * 1000 / (tasks - 1), 2),
        "startup_wall_ms": ms(wall_1),
        "peak_rss_mb": round(median([s.maxrss_mb for s in full]), 1),
    }


def run(runs: int, tasks: int, concurrency: int, latency_ms: float, with_rivals: bool) -> dict[str, Any]:
    ideal = concurrency / (latency_ms / 1000)
    with tempfile.TemporaryDirectory() as tmp, emulator(latency_ms) as url:
        work = Path(tmp)
        full_input, one_input = tasks_file(work / "tasks.jsonl", tasks), tasks_file(work / "one.jsonl", 1)
        out = work / "out.jsonl"
        env = {**executor_env(url, work), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        ours = [str(BIN / "llm-exec-gpt"), "--batch", "--concurrency", str(concurrency)]
        commands = {"llm-exec-gpt": ours,
                    # The same command handed to a warm llm-exec-daemon: no SDK import before the first call.
                    "llm-exec-gpt via daemon": ours,
                    # The emulator's ceiling: bare HTTP from a stdlib asyncio client, no SDK.
                    "raw": [sys.executable, str(ROOT / "scripts" / "bench" / "raw_batch.py"), f"{url}/v1",
                            str(concurrency)]}
        versions = {}
        if with_rivals:
            python = bench_python()
            commands["litellm"] = [str(python), str(ROOT / "scripts" / "bench" / "litellm_batch.py"), f"{url}/v1",
                                   str(concurrency)]
            versions["litellm"] = installed_version(python, "litellm")
        samples: dict[str, dict[str, list[Sample]]] = {name: {"full": [], "one": []} for name in commands}
        rates: dict[str, list[float]] = {name: [] for name in commands}
        daemon_dir = work / "daemon"
        daemon_dir.mkdir()
        with warm_daemon(env, daemon_dir) as socket_path:
            envs = {name: env for name in commands}
            envs["llm-exec-gpt via daemon"] = {**env, "LLM_EXEC_DAEMON": socket_path}
            for round_ in range(runs + 1):  # round 0 warms up
                log(f"batch round {round_}/{runs}: {tasks} tasks, concurrency {concurrency}, "
                    f"latency {latency_ms:g} ms")
                for name, argv in commands.items():
                    measure_batch(name, argv, envs[name], round_, (one_input, full_input), tasks, out, samples,
                                  rates)
    results = {name: {**view(s["full"], s["one"], rates[name], tasks, ideal), "version": versions.get(name)}
               for name, s in samples.items()}
    return {"runs": runs, "tasks": tasks, "concurrency": concurrency, "latency_ms": latency_ms,
            "ideal_tasks_per_s": round(ideal, 1), "results": results}


def measure_batch(name: str, argv: list[str], env: dict[str, str], round_: int, inputs: tuple[Path, Path],
                  tasks: int, out: Path, samples: dict[str, dict[str, list[Sample]]],
                  rates: dict[str, list[float]]) -> None:
    """One round of one command: the one-task run and the full run; round 0 is not kept."""
    one_input, full_input = inputs
    for kind, source, count in (("one", one_input, 1), ("full", full_input, tasks)):
        sample = measure(argv, env, source, stdout=out)
        done = successes(out)
        if sample.code != 0 or done != count:
            raise RuntimeError(f"{name}: exit {sample.code}, {done}/{count} tasks succeeded")
        if round_:
            samples[name][kind].append(sample)
            if kind == "full":
                rates[name].append(steady_rate(out))
