"""LLM_EXEC_PUSHGATEWAY: push the totals of a grouping key (job + instance) to a Pushgateway.

The Pushgateway replaces a group's values on every push, so processes cannot just push their own
increments. The running totals of each group live in the shared state store instead (SQLite, or
Redis for a fleet), and only one process at a time pushes them:

1. one transaction adds this process's increments to the group's totals document, bumps its
   sequence number and, when no other process holds the push lease, takes it;
2. the lease holder PUTs the totals (the whole group); a second transaction then either releases
   the lease, when the sequence number is still the one it pushed, or, when other processes added
   increments meanwhile, hands back the newer totals to push again, keeping the lease.

A process that finds the lease taken leaves at once: the holder sees its sequence number move and
pushes its increments too. So no process waits for another's push, the values in the Pushgateway
only grow (a slow, older push never lands after a newer one, bar an abandoned push, below), and
the totals survive a Pushgateway restart without persistence (the next push restores them).

One group per process instance was the alternative: the Pushgateway never forgets a group, so a
fleet spawning a process per task would grow it (and every scrape) without bound.

Time is bounded: the pushes of one flush get PUSH_BUDGET_SECONDS together, each in a thread that
is abandoned at the deadline (a Pushgateway that accepts the connection and never answers),
after which the lease is released and the totals wait in the store for the next process. A
failed push is one warning on stderr; the result, already written, does not change.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from ._metrics_model import Totals
from ._metrics_text import render

PUSH_BUDGET_SECONDS = 0.8
# Longer than any push can take (the budget): a holder killed mid-push blocks nobody for long.
LEASE_SECONDS = 5.0
DEFAULT_JOB = "llm-exec"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Warn = Callable[[str], None]


class PushError(Exception):
    pass


def grouping_key(env: Mapping[str, str]) -> tuple[str, str]:
    """(job, instance): LLM_EXEC_PUSHGATEWAY_JOB (default llm-exec) and LLM_EXEC_PUSHGATEWAY_INSTANCE
    (default the host name, so the machines of a fleet keep their own groups)."""
    import socket

    job = env.get("LLM_EXEC_PUSHGATEWAY_JOB", "").strip() or DEFAULT_JOB
    instance = env.get("LLM_EXEC_PUSHGATEWAY_INSTANCE", "").strip() or socket.gethostname()
    return job, instance


def group_path(job: str, instance: str) -> str:
    """/metrics/job/<job>/instance/<instance>, a value with '/' (or empty) in the Pushgateway's base64 form."""

    def part(name: str, value: str) -> str:
        if "/" in value or not value:
            return f"{name}@base64/{base64.urlsafe_b64encode(value.encode()).decode() or '='}"
        return f"{name}/{quote(value, safe='')}"

    return f"/metrics/{part('job', job)}/{part('instance', instance)}"


def shown(url: str) -> str:
    """The URL without its credentials, for messages."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def put(url: str, path: str, body: bytes, timeout: float) -> None:
    """PUT the exposition text as the whole group (stdlib http.client: the SDKs have it loaded)."""
    import http.client

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PushError(f"LLM_EXEC_PUSHGATEWAY must be an http(s):// URL, not {shown(url)!r}")
    connection_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_type(parts.hostname, parts.port, timeout=timeout)
    headers = {"Content-Type": CONTENT_TYPE}
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    try:
        connection.request("PUT", parts.path.rstrip("/") + path, body=body, headers=headers)
        response = connection.getresponse()
        answer = response.read(500)
        if response.status not in (200, 202):
            raise PushError(f"HTTP {response.status}: {answer.decode('utf-8', 'replace').strip()}")
    finally:
        connection.close()


def _put_within(url: str, path: str, body: bytes, deadline: float) -> None:
    """`put`, given up at `deadline` even when the server trickles or never answers."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise PushError("no time left to push")
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            put(url, path, body, remaining)
            outcome.append(None)
        except BaseException as exc:  # handed to the waiting thread, which reports it
            outcome.append(exc)

    worker = threading.Thread(target=attempt, name="llm-exec-pushgateway", daemon=True)
    worker.start()
    worker.join(remaining)
    if not outcome:
        raise PushError(f"no answer within {PUSH_BUDGET_SECONDS:g} s")
    if outcome[0] is not None:
        raise outcome[0]


def push(ours: Totals, env: Mapping[str, str], warn: Warn) -> None:
    """Add `ours` to the group's totals in the state store and push them (module docstring)."""
    url = env["LLM_EXEC_PUSHGATEWAY"].strip()
    deadline = time.monotonic() + PUSH_BUDGET_SECONDS
    from ..state import StateUnavailable, open_store, state_enabled

    if not state_enabled():
        warn("metrics: LLM_EXEC_PUSHGATEWAY adds up processes' counts in the state store, and "
             "LLM_EXEC_STATE is off: not pushed (LLM_EXEC_PROM_TEXTFILE needs no store)")
        return
    job, instance = grouping_key(env)
    path = group_path(job, instance)
    key = "metrics:pushgateway:" + hashlib.sha256(f"{shown(url)}\x1f{job}\x1f{instance}".encode()).hexdigest()[:32]
    owner = os.urandom(8).hex()
    try:
        store = open_store()
    except StateUnavailable as exc:
        warn(f"metrics: state store unavailable, not pushed to the Pushgateway: {exc}")
        return
    try:
        taken = store.transact([key], _add(key, ours, owner, time.time()))
        while taken is not None:
            families, seq = taken
            try:
                _put_within(url, path, render(Totals.from_doc(families)).encode(), deadline)
                pushed = True
            except (OSError, PushError) as exc:
                warn(f"metrics: push to {shown(url)} failed ({type(exc).__name__}: {exc}); "
                     "the counts wait in the state store for the next push")
                pushed = False
            again = pushed and time.monotonic() < deadline
            taken = store.transact([key], _after_push(key, owner, seq, again, time.time()))
    except StateUnavailable as exc:
        warn(f"metrics: state store unavailable, not pushed to the Pushgateway: {exc}")
    finally:
        store.close()


Pending = tuple[dict[str, Any], int] | None


def _add(key: str, ours: Totals, owner: str, now: float) -> Callable[[Any], tuple[dict[str, Any], Pending]]:
    """Transaction: add our increments; take the lease when it is free (-> what to push)."""

    def fn(docs: Any) -> tuple[dict[str, Any], Pending]:
        doc = docs[key] or {"families": {}, "seq": 0, "lease": None}
        totals = Totals.from_doc(doc["families"])
        totals.merge(ours)
        updated = {"families": totals.to_doc(), "seq": doc["seq"] + 1, "lease": doc.get("lease")}
        lease = updated["lease"]
        if lease is not None and lease["until"] > now:
            return {key: updated}, None  # its holder pushes our increments too
        updated["lease"] = {"owner": owner, "until": now + LEASE_SECONDS}
        return {key: updated}, (updated["families"], updated["seq"])

    return fn


def _after_push(key: str, owner: str, pushed_seq: int, again: bool,
                now: float) -> Callable[[Any], tuple[dict[str, Any], Pending]]:
    """Transaction: release the lease, or keep it and hand back newer totals to push."""

    def fn(docs: Any) -> tuple[dict[str, Any], Pending]:
        doc = docs[key]
        if doc is None or (doc.get("lease") or {}).get("owner") != owner:
            return {}, None  # our lease ran out and another process took over
        if again and doc["seq"] != pushed_seq:
            lease = {"owner": owner, "until": now + LEASE_SECONDS}
            return {key: {**doc, "lease": lease}}, (doc["families"], doc["seq"])
        return {key: {**doc, "lease": None}}, None

    return fn
