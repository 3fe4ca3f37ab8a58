"""Circuit breaker, token-bucket rate limits and budget reservations, as pure transactions.

Each function returns a `Transaction` for `StateStore.transact`: it reads the current documents
and returns (writes, answer). Time is passed in, so tests can drive the policies with any clock.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .store import Doc, Docs, Transaction

# -- circuit breaker -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BreakerConfig:
    """Open after `threshold` consecutive retryable failures; after `cooldown` seconds let one
    probe through (half-open); close on its success, reopen on its failure."""

    threshold: int = 5
    cooldown: float = 30.0


@dataclass(frozen=True)
class BreakerDecision:
    allowed: bool
    probe: bool = False
    retry_after: float | None = None  # seconds left in the cooldown when refused


def breaker_wait(doc: Doc | None, config: BreakerConfig, now: float) -> float | None:
    """Seconds until this circuit lets a call through again; None when a call may go now."""
    if doc is None or doc["state"] == "closed":
        return None
    if doc["state"] == "open":
        reopen_at = doc["opened_at"] + config.cooldown
    else:  # half-open with a probe in flight: everyone else waits for its verdict
        reopen_at = doc.get("probe_started", 0.0) + config.cooldown
    return round(reopen_at - now, 3) if now < reopen_at else None


def breaker_check(key: str, config: BreakerConfig, now: float) -> Transaction[BreakerDecision]:
    def fn(docs: Docs) -> tuple[Mapping[str, Doc | None], BreakerDecision]:
        doc = docs[key]
        if doc is None or doc["state"] == "closed":
            return {}, BreakerDecision(True)
        wait = breaker_wait(doc, config, now)
        if wait is not None:
            return {}, BreakerDecision(False, retry_after=wait)
        # Cooldown over (or a probe that never reported back): this caller is the one probe.
        return {key: {**doc, "state": "half_open", "probe_started": now}}, BreakerDecision(True, probe=True)

    return fn


def breaker_record(key: str, config: BreakerConfig, now: float, *, failed: bool, label: str) -> Transaction[str]:
    """Record one attempt's outcome. `failed` = a retryable failure (the provider is unwell);
    any answer from the provider, even a 4xx, shows it is up. Returns the new state."""

    def fn(docs: Docs) -> tuple[Mapping[str, Doc | None], str]:
        doc = docs[key] or {"state": "closed", "failures": 0, "opened": 0, "label": label}
        if not failed:
            if doc["state"] == "closed" and doc["failures"] == 0:
                return {}, "closed"  # nothing to change: skip the write
            return {key: {**doc, "state": "closed", "failures": 0}}, "closed"
        failures = doc["failures"] + 1
        if doc["state"] == "half_open" or failures >= config.threshold:
            opened = doc.get("opened", 0) + (0 if doc["state"] == "open" else 1)
            return {key: {**doc, "state": "open", "failures": failures, "opened_at": now, "opened": opened}}, "open"
        return {key: {**doc, "failures": failures}}, doc["state"]

    return fn


# -- rate limits (token buckets) ---------------------------------------------------------------------


def rate_acquire(key: str, rpm: float | None, tpm: float | None, tokens: int, now: float) -> Transaction[float]:
    """Take one request and `tokens` tokens from the buckets; returns 0 when taken, else the wait
    (seconds) until they would be available. Buckets start full and refill continuously."""

    def fn(docs: Docs) -> tuple[Mapping[str, Doc | None], float]:
        doc = docs[key] or {"requests": rpm, "tokens": tpm, "ts": now}
        elapsed = max(0.0, now - doc["ts"])
        requests = _refill(doc.get("requests"), rpm, elapsed)
        available = _refill(doc.get("tokens"), tpm, elapsed)
        # A request larger than the whole bucket could never pass: it waits for a full bucket.
        wanted = min(tokens, tpm) if tpm else 0
        waits = [0.0]
        if rpm and requests is not None and requests < 1:
            waits.append((1 - requests) * 60.0 / rpm)
        if tpm and available is not None and available < wanted:
            waits.append((wanted - available) * 60.0 / tpm)
        if max(waits) > 0:
            return {key: {"requests": requests, "tokens": available, "ts": now}}, round(max(waits), 3)
        return {key: {"requests": None if requests is None else requests - 1,
                      "tokens": None if available is None else available - tokens, "ts": now}}, 0.0

    return fn


def rate_correct(key: str, delta_tokens: int) -> Transaction[None]:
    """After the call: charge (or refund) the difference between actual and reserved tokens."""

    def fn(docs: Docs) -> tuple[Mapping[str, Doc | None], None]:
        doc = docs[key]
        if doc is None or doc.get("tokens") is None or delta_tokens == 0:
            return {}, None
        return {key: {**doc, "tokens": doc["tokens"] - delta_tokens}}, None

    return fn


def _refill(level: float | None, per_minute: float | None, elapsed: float) -> float | None:
    if not per_minute:
        return None
    if level is None:
        level = per_minute
    return min(float(per_minute), level + elapsed * per_minute / 60.0)


# -- budgets ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetCap:
    scope: str  # e.g. "agent:claude-code", "registry:team", "executor:openai"
    period: str  # "daily" | "monthly"
    limit_usd: float

    def key(self, now: float) -> str:
        moment = datetime.fromtimestamp(now, UTC)
        stamp = moment.strftime("%Y-%m-%d") if self.period == "daily" else moment.strftime("%Y-%m")
        return f"budget:{self.scope}:{self.period}:{stamp}"


@dataclass(frozen=True)
class BudgetVerdict:
    reservation: str | None  # None when refused
    refused_by: BudgetCap | None = None
    committed_usd: float = 0.0  # spent + reserved in the refusing cap


def budget_reserve(caps: list[BudgetCap], amount: float, now: float, ttl: float) -> Transaction[BudgetVerdict]:
    """Reserve `amount` in every cap at once, or in none: the cap holds under concurrency because
    each reservation counts against it until settled (or until `ttl`, if its process died)."""
    keys = [cap.key(now) for cap in caps]
    reservation = os.urandom(16).hex()  # as unique as a uuid4, without importing uuid (~2 ms)

    def fn(docs: Docs) -> tuple[Mapping[str, Doc | None], BudgetVerdict]:
        updated: dict[str, Doc] = {}
        for cap, key in zip(caps, keys, strict=True):
            doc = _live(docs[key], now)
            committed = doc["spent"] + sum(amount for amount, _ in doc["reserved"].values())
            if committed + amount > cap.limit_usd + 1e-12:
                return {}, BudgetVerdict(None, cap, round(committed, 10))
            updated[key] = {**doc, "reserved": {**doc["reserved"], reservation: [amount, now + ttl]}}
        return updated, BudgetVerdict(reservation)

    return fn


def budget_settle(caps: list[BudgetCap], reservation: str | None, actual: float, reserved_at: float,
                  now: float) -> Transaction[None]:
    """Replace the reservation by the actual cost (0 when the call cost nothing or failed early),
    in the period the reservation was made in."""
    keys = [cap.key(reserved_at) for cap in caps]

    def fn(docs: Docs) -> tuple[Mapping[str, Doc | None], None]:
        updated = {}
        for key in keys:
            doc = _live(docs[key], now)
            reserved = dict(doc["reserved"])
            reserved.pop(reservation or "", None)
            updated[key] = {**doc, "spent": round(doc["spent"] + actual, 10), "reserved": reserved}
        return updated, None

    return fn


def _live(doc: Doc | None, now: float) -> dict[str, Any]:
    doc = doc or {"spent": 0.0, "reserved": {}}
    # Reservations of processes that died without settling expire instead of blocking forever.
    return {**doc, "reserved": {rid: value for rid, value in doc["reserved"].items() if value[1] > now}}
