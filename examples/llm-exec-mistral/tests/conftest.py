"""Fixtures: llm-exec's bundled emulator on loopback, and an environment isolated per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_exec.emulator import Emulator

from mistral_testing import SCRUBBED_ENV


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emu = Emulator().start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in SCRUBBED_ENV:
        monkeypatch.delenv(name, raising=False)
    # Each test its own shared-state store (breaker, limits, ledger, cache) and price cache.
    monkeypatch.setenv("LLM_EXEC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # In-process unless a test points LLM_EXEC_DAEMON at a daemon of its own.
    monkeypatch.setenv("LLM_EXEC_DAEMON", "off")
