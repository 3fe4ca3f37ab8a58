"""The emulator's own ceiling for the batch figure: every task of a JSONL file as a bare HTTP/1.1
request over CONCURRENCY keep-alive connections (standard library asyncio only: no SDK, no
validation, no state, no retries), so the distance from it to `llm-exec-gpt --batch` is ours and the
SDK's, and the distance from it to the ideal is the emulator's and the machine's.

Usage: python raw_batch.py BASE_URL CONCURRENCY < tasks.jsonl > results.jsonl
"""

import asyncio
import json
import sys
from datetime import UTC, datetime
from urllib.parse import urlsplit


def completed_at() -> str:
    """The completion time in the executors' `timestamp` format (UTC, milliseconds)."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


async def main(base_url: str, concurrency: int) -> int:
    tasks = [json.loads(line) for line in sys.stdin if line.strip()]
    url = urlsplit(base_url)
    path = f"{url.path.rstrip('/')}/chat/completions"
    results: list[dict] = [{}] * len(tasks)
    queue = iter(range(len(tasks)))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        for index in queue:  # each connection takes the next task when its previous one is answered
            task = tasks[index]
            body = json.dumps({"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": task["prompt"]}],
                               "max_completion_tokens": task.get("max_tokens", 20)}).encode()
            writer.write(f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer bench-key-0123\r\n"
                         f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            answer = json.loads(await reader.readexactly(length))
            results[index] = {"task_id": task.get("task_id"), "status": "success", "timestamp": completed_at(),
                              "output": answer["choices"][0]["message"]["content"],
                              "tokens_used": answer["usage"]["total_tokens"]}
        writer.close()

    await asyncio.gather(*(connection() for _ in range(min(concurrency, len(tasks)))))
    sys.stdout.write("".join(json.dumps(result) + "\n" for result in results))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], int(sys.argv[2]))))
