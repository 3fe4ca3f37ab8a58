"""``llm-exec-emulator`` command line: serve the emulator until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import sys
import threading
from pathlib import Path

from .server import Emulator


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llm-exec-emulator", description="Local emulator of LLM provider HTTP APIs.")
    p.add_argument("--host", default="127.0.0.1", help="bind address (loopback only unless --allow-remote)")
    p.add_argument("--port", type=int, default=0, help="port (0 = pick a free one)")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    p.add_argument("--latency-ms", type=float, default=0, help="delay before the first response byte")
    p.add_argument("--chunk-delay-ms", type=float, default=0, help="delay between stream chunks")
    p.add_argument("--fixtures-dir", type=Path, default=None, help="base dir for scripted 'fixture' steps")
    p.add_argument("--replay", type=Path, default=None, metavar="DIR", help="answer from the recordings in DIR")
    p.add_argument("--port-file", type=Path, default=None, metavar="FILE", help="write the port here once listening")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not _is_loopback(args.host) and not args.allow_remote:
        print(f"llm-exec-emulator: refusing non-loopback host {args.host!r} without --allow-remote", file=sys.stderr)
        return 2
    stop = threading.Event()
    # Handlers first so a signal during start-up still exits cleanly.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    emu = Emulator(args.latency_ms, args.chunk_delay_ms, args.fixtures_dir, args.replay, args.host, args.port)
    try:
        emu.start()
    except OSError as exc:  # port in use, bad replay dir...
        print(f"llm-exec-emulator: {exc}", file=sys.stderr)
        return 1
    try:
        if args.port_file is not None:
            tmp = args.port_file.with_name(args.port_file.name + ".tmp")
            tmp.write_text(f"{emu.port}\n")
            tmp.replace(args.port_file)  # atomic: readers never see a half-written file
        print(json.dumps({"url": emu.url, "pid": os.getpid()}), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        emu.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
