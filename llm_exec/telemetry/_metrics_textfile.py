"""LLM_EXEC_PROM_TEXTFILE: one exposition file for node-exporter's textfile collector, shared by
every executor process on the machine.

Each process adds its own increments under an exclusive lock (flock on `<file>.lock`, never
deleted, so every process locks the same inode): read the file, add, write `<file>.<pid>.tmp`
beside it, rename it over the file. The rename is atomic, so node-exporter (or anyone) reads
either the old file or the new one, never a torn one; the lock makes the read-add-write of two
processes happen one after the other, so no increment is lost. The temporary name does not end
in `.prom`, so the collector never reads a half-written one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator

from ._metrics_model import Totals
from ._metrics_text import Lines, lines, merge, read, text

# Waiting for the lock: 50 writers at once each hold it for about a millisecond; a holder stuck
# far longer (a hung network file system) costs this process its increments, not its exit.
LOCK_TIMEOUT_SECONDS = 5.0


@contextlib.contextmanager
def _locked(path: str, timeout: float) -> Iterator[None]:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError:  # another user's lock file: flock needs only a read descriptor
        fd = os.open(path, os.O_RDONLY)
    try:
        deadline = time.monotonic() + timeout
        pause = 0.0005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    raise TimeoutError(f"{path} stayed locked for {timeout:g} s") from exc
                time.sleep(pause)
                pause = min(pause * 2, 0.01)
        yield
    finally:
        os.close(fd)  # releases the lock


def merge_into(path: str, totals: Totals, warn: Callable[[str], None],
               lock_timeout: float = LOCK_TIMEOUT_SECONDS) -> None:
    """Add `totals` to those in the textfile at `path`, atomically."""
    ours = lines(totals)  # rendered before the lock is taken: the lock is held only to merge
    with _locked(path + ".lock", lock_timeout):
        families: Lines = {}
        try:
            with open(path, encoding="utf-8") as handle:
                families = read(handle.read())
        except FileNotFoundError:
            pass  # the first writer
        except (ValueError, UnicodeDecodeError) as exc:
            # Not a file we wrote (or edited by hand): replacing it restarts the counters, which
            # Prometheus reads as a counter reset, rather than adding to numbers we cannot trust.
            warn(f"metrics: {path} is not llm-exec's textfile ({exc}); starting it anew")
        merge(families, ours)
        temporary = f"{path}.{os.getpid()}.tmp"
        try:
            with open(temporary, "w", encoding="utf-8") as handle:
                handle.write(text(families))
            os.replace(temporary, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
