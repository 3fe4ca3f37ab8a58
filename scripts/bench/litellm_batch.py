"""LiteLLM's async batch: every task of a JSONL file through `litellm.acompletion`, `asyncio.gather` under a
semaphore (run by .bench-venv's python). Writes one JSON line per task, in input order.

Usage: python litellm_batch.py API_BASE CONCURRENCY < tasks.jsonl > results.jsonl
"""

import asyncio
import json
import sys

import litellm
from raw_batch import completed_at  # this directory is on sys.path: the script's own


async def main(api_base: str, concurrency: int) -> int:
    tasks = [json.loads(line) for line in sys.stdin if line.strip()]
    slots = asyncio.Semaphore(concurrency)

    async def one(task: dict) -> dict:
        async with slots:
            try:
                response = await litellm.acompletion(
                    model="openai/gpt-5.4-mini", api_base=api_base, api_key="bench-key-0123",
                    messages=[{"role": "user", "content": task["prompt"]}], max_tokens=task.get("max_tokens", 20))
            except Exception as exc:  # one failed task must not stop the batch
                return {"task_id": task.get("task_id"), "status": "error", "error": f"{type(exc).__name__}: {exc}"}
            return {"task_id": task.get("task_id"), "status": "success", "timestamp": completed_at(),
                    "output": response.choices[0].message.content, "tokens_used": response.usage.total_tokens}

    results = await asyncio.gather(*(one(task) for task in tasks))
    sys.stdout.write("".join(json.dumps(result) + "\n" for result in results))
    return 0 if all(result["status"] == "success" for result in results) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], int(sys.argv[2]))))
