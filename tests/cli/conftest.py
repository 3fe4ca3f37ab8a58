"""`llm-exec` run as the real console script, and throwaway provider plugins to list."""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BIN_DIR, subprocess_env

TOOL = str(BIN_DIR / "llm-exec")


@dataclass
class ToolRun:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_tool(*args: str, env: Mapping[str, str | None] | None = None, timeout: float = 60) -> ToolRun:
    child_env = subprocess_env()
    for name, value in (env or {}).items():
        if value is None:
            child_env.pop(name, None)
        else:
            child_env[name] = value
    proc = subprocess.run([TOOL, *args], capture_output=True, env=child_env, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL)
    stdout, stderr = proc.stdout.decode(), proc.stderr.decode()
    assert "Traceback" not in stderr, stderr
    return ToolRun(proc.returncode, stdout, stderr)


# Plugins, each a module and a distribution's metadata (a *.dist-info directory with its entry point):
# what `pip install` leaves on sys.path, without installing anything into the virtualenv.
PLUGINS = {
    "zz-import-fails": ("llm-exec-zz-import-fails", "zz_import_fails:Llm", """
        raise ImportError("No module named 'some_missing_sdk'")
    """),
    "zz-not-a-provider": ("llm-exec-zz-not-a-provider", "zz_not_a_provider:Llm", """
        class Llm:
            name = "not-a-provider"
    """),
    "zz-working": ("llm-exec-zz-working", "zz_working:Llm", """
        from llm_exec.providers.base import BaseLlm

        class Llm(BaseLlm):
            name = "zz-working"
            default_model = "zz-model-1"
            key_env_vars = ("ZZ_WORKING_API_KEY",)
            base_url_env_vars = ("ZZ_WORKING_BASE_URL",)
            default_base_url = "http://127.0.0.1:9/zz"
            agent_types = ("zz-agent",)

            async def _generate(self, request):
                raise NotImplementedError

            def describe(self, request):
                return {}
    """),
}


@pytest.fixture
def plugin_path(tmp_path: Path) -> dict[str, str]:
    """PYTHONPATH holding the PLUGINS: for the `llm-exec` subprocess only."""
    root = tmp_path / "plugins"
    root.mkdir()
    for entry_name, (package, target, source) in PLUGINS.items():
        module = target.partition(":")[0]
        (root / f"{module}.py").write_text(textwrap.dedent(source))
        dist_info = root / f"{package.replace('-', '_')}-0.3.1.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.3.1\n")
        (dist_info / "entry_points.txt").write_text(f"[llm_exec.providers]\n{entry_name} = {target}\n")
    return {"PYTHONPATH": str(root)}
