"""(1) One-shot wall time of each executor next to `python -c "import <its sdk>"` and `python -c pass`,
(6) peak RSS of each, and (2) the same call made with simonw's `llm` CLI and a LiteLLM one-shot script.

Runs are interleaved (one round measures every command once), so load that comes and goes on the
machine shifts all columns alike and the ratios hold."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from common import (
    BIN,
    ROOT,
    TASK,
    Sample,
    bench_python,
    emulator,
    executor_env,
    installed_version,
    log,
    measure,
    median,
    ms,
)

SDK_IMPORT = {
    "claude": "import anthropic",
    "gpt": "import openai",
    "gemini": "from google import genai",
    "custom": "import requests",
    "llama": "import requests",
}

UMBRELLA = "llm-exec run --provider gpt"

LLM_MODELS = """\
- model_id: emulator-gpt
  model_name: gpt-5.4-mini
  api_base: "{url}/v1"
"""


def summary(samples: list[Sample]) -> dict[str, float]:
    return {"wall_ms": ms(median([s.wall for s in samples])), "peak_rss_mb": round(median([s.maxrss_mb
                                                                                          for s in samples]), 1)}


def run(runs: int, with_rivals: bool) -> dict[str, Any]:
    commands: dict[str, tuple[list[str], bytes | None]] = {"python -c pass": ([sys.executable, "-c", "pass"], None)}
    for executor, sdk in SDK_IMPORT.items():
        commands[f"sdk:{executor}"] = ([sys.executable, "-c", sdk], None)
        commands[f"llm-exec-{executor}"] = ([str(BIN / f"llm-exec-{executor}")], TASK)
    # The umbrella's `run` must cost what the dedicated executable costs (issue 13: within 5 %).
    commands[UMBRELLA] = ([str(BIN / "llm-exec"), "run", "--provider", "gpt"], TASK)
    with tempfile.TemporaryDirectory() as tmp, emulator() as url:
        env = executor_env(url, Path(tmp))
        versions = {}
        if with_rivals:
            python = bench_python()
            user_path = Path(tmp) / "llm-user"
            user_path.mkdir()
            (user_path / "extra-openai-models.yaml").write_text(LLM_MODELS.format(url=url))
            commands["llm"] = ([str(python.parent / "llm"), "prompt", "-m", "emulator-gpt", "--key", "bench-key-0123",
                                "--no-stream", "-o", "max_tokens", "20", "Say hello"], None)
            commands["litellm"] = ([str(python), str(ROOT / "scripts" / "bench" / "litellm_oneshot.py"), f"{url}/v1"],
                                   None)
            env = {**env, "LLM_USER_PATH": str(user_path), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
            versions = {"llm": installed_version(python, "llm"), "litellm": installed_version(python, "litellm")}
        samples: dict[str, list[Sample]] = {name: [] for name in commands}
        for round_ in range(runs + 1):  # round 0 warms the page cache, .pyc files and the price cache
            log(f"one-shot round {round_}/{runs}")
            for name, (argv, stdin) in commands.items():
                sample = measure(argv, env, stdin)
                if sample.code != 0:
                    raise RuntimeError(f"{name} exited {sample.code}: {' '.join(argv)}")
                if round_:
                    samples[name].append(sample)
    baseline = summary(samples["python -c pass"])
    rows = []
    for executor, sdk in SDK_IMPORT.items():
        call, imported = summary(samples[f"llm-exec-{executor}"]), summary(samples[f"sdk:{executor}"])
        rows.append({"executor": f"llm-exec-{executor}", "sdk_import": sdk, "sdk_import_ms": imported["wall_ms"],
                     "sdk_import_rss_mb": imported["peak_rss_mb"], "call_ms": call["wall_ms"],
                     "peak_rss_mb": call["peak_rss_mb"], "ratio": round(call["wall_ms"] / imported["wall_ms"], 2)})
    rivals = {name: {**summary(samples[name]), "version": versions[name]} for name in ("llm", "litellm")
              if name in samples}
    umbrella, gpt = summary(samples[UMBRELLA]), summary(samples["llm-exec-gpt"])
    run_row = {"command": UMBRELLA, "call_ms": umbrella["wall_ms"], "peak_rss_mb": umbrella["peak_rss_mb"],
               "over_dedicated": round(umbrella["wall_ms"] / gpt["wall_ms"], 3)}
    return {"runs": runs, "python_pass_ms": baseline["wall_ms"], "executors": rows, "rivals": rivals,
            "umbrella": run_row}
