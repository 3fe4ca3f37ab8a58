"""Derived data that `llm-route` keeps between runs, so that a run need not import PyYAML, the
schema validators or the provider modules to reach a decision it has reached before.

Files live in $XDG_CACHE_HOME/llm-exec (default ~/.cache/llm-exec), beside llm_exec.pricing's rate
card. Every entry records what it was derived from and is used only when all of it is unchanged:

- the code that derived it: the size, mtime and inode of every module and schema of the llm_exec
  package and of PyYAML's, and the Python version (`code_fingerprint`), so editing, upgrading or
  reinstalling any of them invalidates everything;
- for a registry: the registry file's full text (compared byte for byte, so no timestamp race);
- for what the provider classes answer from the environment: a SHA-256 of the whole environment.

A cache that cannot be read or written is simply not used; files are replaced atomically
(write, then rename), so concurrent runs never read half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any

# Bumped when the layout of a cache file changes.
FORMAT = 1
# The package directories whose files the cached data derives from (relative to llm_exec/), and
# the third-party package that builds a registry's document.
_CODE_DIRS = ("", "routing", "providers", "state", "schemas")
_DEPENDENCIES = ("yaml",)
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_fingerprint: list[list[Any]] | None = None


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "llm-exec")


def code_fingerprint() -> list[list[Any]]:
    """[name, size, mtime_ns, inode] of every .py and .json file the derived data depends on."""
    global _fingerprint
    if _fingerprint is None:
        entries: list[list[Any]] = [["python", sys.version]]
        for package in _DEPENDENCIES:
            entries.append([package, *_installed(package)])
        for sub in _CODE_DIRS:
            directory = os.path.join(_PACKAGE_DIR, sub)
            try:
                with os.scandir(directory) as scan:
                    for entry in scan:
                        if entry.name.endswith((".py", ".json")):
                            st = entry.stat()
                            entries.append([f"{sub}/{entry.name}", st.st_size, st.st_mtime_ns, st.st_ino])
            except OSError:
                continue
        entries.sort()
        _fingerprint = entries
    return _fingerprint


def _installed(package: str) -> list[int]:
    """Size, mtime and inode of the package's __init__.py where an import would find it (the first
    sys.path entry holding it), without importing it; [] when it is not installed there."""
    for entry in sys.path:
        try:
            st = os.stat(os.path.join(entry or ".", package, "__init__.py"))
        except OSError:
            continue
        return [st.st_size, st.st_mtime_ns, st.st_ino]
    return []


def read(name: str) -> dict[str, Any] | None:
    """The cache file `name` if it was written by this format and this code, else None."""
    try:
        with open(os.path.join(cache_dir(), name), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("code") != code_fingerprint():
        return None
    return data


def write(name: str, data: dict[str, Any]) -> None:
    """Store `data` (JSON-serialisable) as cache file `name`, readable by this user only."""
    directory = cache_dir()
    path = os.path.join(directory, name)
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(directory, exist_ok=True)
        # 0600: an entry can carry a registry's text (and its metadata) or endpoint-derived data.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w", encoding="utf-8") as handle:
            json.dump({**data, "format": FORMAT, "code": code_fingerprint()}, handle)
        os.replace(temporary, path)
    except (OSError, TypeError, ValueError):
        # Read-only, full, or data JSON cannot hold: the next run derives it again.
        with contextlib.suppress(OSError):
            os.unlink(temporary)
