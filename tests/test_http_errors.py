"""The shared status table and the retry-wait parsing every provider uses."""

from __future__ import annotations

import email.utils
import time

import pytest

from llm_exec.providers._http_errors import (
    body_message,
    error_from_status,
    google_retry_delay,
    parse_retry_after,
)


@pytest.mark.parametrize(
    ("status", "error_type", "exit_code", "retryable"),
    [
        (400, "invalid_request", 3, False),
        (401, "authentication_error", 2, False),
        (403, "authentication_error", 2, False),
        (404, "model_not_found", 2, False),
        (408, "timeout", 1, True),
        (409, "server_error", 1, True),
        (413, "invalid_request", 3, False),
        (422, "invalid_request", 3, False),
        (429, "rate_limited", 1, True),
        (500, "server_error", 1, True),
        (502, "server_error", 1, True),
        (503, "server_error", 1, True),
        (529, "overloaded", 1, True),
    ],
)
def test_status_table(status: int, error_type: str, exit_code: int, retryable: bool) -> None:
    error = error_from_status(status, "msg")
    assert (error.type, error.exit_code, error.retryable, error.status_code) == (
        error_type, exit_code, retryable, status)


def test_x_should_retry_overrides_both_ways() -> None:
    assert error_from_status(500, "m", headers={"x-should-retry": "false"}).retryable is False
    assert error_from_status(400, "m", headers={"X-Should-Retry": "true"}).retryable is True


def test_retry_after_ms_wins_over_retry_after() -> None:
    assert parse_retry_after({"retry-after": "20", "retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None


def test_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= parse_retry_after({"retry-after": when}) <= 31


def test_gemini_retry_info_in_body() -> None:
    body = {"error": {"code": 429, "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "48s"},
    ]}}
    assert google_retry_delay(body) == 48.0
    assert google_retry_delay({"error": {}}) is None


def test_body_message_shapes() -> None:
    assert body_message({"error": {"message": "bad"}}, "x") == "bad"
    assert body_message({"error": "model 'x' not found"}, "x") == "model 'x' not found"
    assert body_message("<html><body><h1>502 Bad Gateway</h1></body></html>", "x") == "502 Bad Gateway"
    assert body_message(None, "fallback") == "fallback"
