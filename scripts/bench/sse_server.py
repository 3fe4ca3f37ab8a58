"""A tiny streaming server for the passthrough benchmark: it answers any provider's streaming request
with the bundled emulator's wire format (OpenAI, Anthropic, Gemini SSE; Ollama NDJSON), one word per
chunk, `--chunk-ms` apart, and records when each chunk was handed to the kernel (CLOCK_MONOTONIC,
the clock every process on the machine shares). One JSON line per request goes to `--log`:
{"path": ..., "sent_ns": {"w000": ..., ...}}.

Run in its own process, so that its timing never waits for the measuring process's GIL.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import time
from pathlib import Path
from urllib.parse import parse_qsl

from llm_exec.emulator.routes import resolve
from llm_exec.emulator.wire_base import Incoming

TOKEN = re.compile(rb"w\d{3}")


def reply_text(words: int) -> str:
    return " ".join(f"w{i:03d}" for i in range(words))


def read_request(conn: socket.socket) -> tuple[str, str, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, _ = request_line.split(" ", 2)
    headers = {name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return method, target, headers, body


def serve(conn: socket.socket, words: int, chunk_ms: float, log: Path) -> None:
    method, target, headers, body = read_request(conn)
    path, _, query = target.partition("?")
    wire = resolve(path)
    if method != "POST" or wire is None:
        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        return
    request = Incoming(method, path, dict(parse_qsl(query)), headers, json.loads(body or b"{}"), "bench-key-0123")
    call = wire.parse(request)
    response = wire.render(call, wire.reply_for(call, reply_text(words)))
    head = [f"HTTP/1.1 {response.status} OK", "Transfer-Encoding: chunked", "Connection: close",
            *(f"{name}: {value}" for name, value in response.headers.items())]
    conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    sent: dict[str, int] = {}
    for chunk in (c for c in response.chunks if c):
        time.sleep(chunk_ms / 1000)  # also before the first: the client has set its stream up by then
        conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        now = time.monotonic_ns()
        for token in TOKEN.findall(chunk):
            sent.setdefault(token.decode(), now)
    conn.sendall(b"0\r\n\r\n")
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"path": path, "sent_ns": sent}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--words", type=int, default=40)
    parser.add_argument("--chunk-ms", type=float, default=10)
    args = parser.parse_args()
    with socket.create_server(("127.0.0.1", 0)) as server:
        args.port_file.write_text(str(server.getsockname()[1]))
        while True:
            conn, _ = server.accept()
            with conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                try:
                    serve(conn, args.words, args.chunk_ms, args.log)
                except (OSError, ValueError) as exc:
                    print(f"sse_server: {type(exc).__name__}: {exc}", flush=True)


if __name__ == "__main__":
    main()
