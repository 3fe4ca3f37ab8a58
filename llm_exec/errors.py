"""The exception tree. Every failure llm-exec reports is one of these.

    LlmError                         exit 1  (base; also "internal_error")
    ├── ExecutionError               exit 1  the call failed; another attempt or provider may succeed
    │   ├── RateLimitError           exit 1  429 from the provider        (retryable)
    │   ├── ServiceUnavailableError  exit 1  5xx / 529 overloaded / 409   (retryable)
    │   ├── TimeoutError             exit 1  408, read timeout, deadline  (retryable)
    │   ├── ConnectionError          exit 1  refused / reset / DNS        (retryable)
    │   ├── ResponseError            exit 1  the provider's answer could not be understood
    │   ├── ContentFilterError       exit 1  the provider filtered the answer
    │   ├── CircuitOpenError         exit 1  recent calls failed: fail fast without the network
    │   ├── LocalRateLimitError      exit 1  our own rpm/tpm limit needs a wait past the deadline
    │   └── CancelledError           exit 1  SIGINT / SIGTERM
    ├── ConfigurationError           exit 2  endpoint, key or model setup is wrong
    │   ├── AuthenticationError      exit 2  missing or rejected key (401/403, or a 400 saying so)
    │   ├── ModelNotFoundError       exit 2  unknown model (404, or a 400 saying so)
    │   ├── BudgetExceededError      exit 2  a spend cap would be passed
    │   └── ReplayMissError          exit 2  replay mode has no recorded answer
    ├── TaskSpecError                exit 3  stdin is not a valid task spec
    └── InvalidRequestError          exit 3  the provider rejected the request as invalid (400)
        └── ContextLengthExceededError  exit 3  the prompt does not fit the model's context window

Each class carries its exit code and `error_type` (the result's `error.type`), so nothing else in
the code base picks exit codes. Provider modules map SDK exceptions onto these at one boundary;
the retry loop only asks `err.retryable`, never matches message strings.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AuthenticationError",
    "BudgetExceededError",
    "CancelledError",
    "CircuitOpenError",
    "ConfigurationError",
    "ConnectionError",
    "ContentFilterError",
    "ContextLengthExceededError",
    "ExecutionError",
    "InvalidRequestError",
    "LlmError",
    "LocalRateLimitError",
    "ModelNotFoundError",
    "RateLimitError",
    "ReplayMissError",
    "ResponseError",
    "ServiceUnavailableError",
    "TaskSpecError",
    "TimeoutError",
]


class LlmError(Exception):
    """Base of every llm-exec error. Unexpected bugs are reported as this class ("internal_error")."""

    exit_code: ClassVar[int] = 1
    error_type: ClassVar[str] = "internal_error"
    default_retryable: ClassVar[bool] = False
    status: ClassVar[str] = "error"

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        field: str | None = None,
        retryable: bool | None = None,
        request_id: str | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        # The wait the provider asked for (retry-after-ms / retry-after / RetryInfo), in seconds.
        self.retry_after = retry_after
        self.field = field
        self.retryable = self.default_retryable if retryable is None else retryable
        self.request_id = request_id
        # A more specific type than the class default, e.g. "overloaded" for a 529.
        self.type = error_type or self.error_type
        # Filled in by the retry loop so a failure still reports how many attempts it made.
        self.attempts: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "type": self.type,
            "message": self.message,
            "retryable": self.retryable,
            "status_code": self.status_code,
            "retry_after_seconds": self.retry_after,
            "field": self.field,
        }


class ExecutionError(LlmError):
    exit_code = 1
    error_type = "execution_error"


class RateLimitError(ExecutionError):
    error_type = "rate_limited"
    default_retryable = True


class ServiceUnavailableError(ExecutionError):
    error_type = "server_error"
    default_retryable = True


class TimeoutError(ExecutionError):
    error_type = "timeout"
    default_retryable = True


class ConnectionError(ExecutionError):
    error_type = "connection_error"
    default_retryable = True


class ResponseError(ExecutionError):
    error_type = "invalid_response"


class ContentFilterError(ExecutionError):
    error_type = "content_filter"


class CircuitOpenError(ExecutionError):
    error_type = "circuit_open"


class LocalRateLimitError(ExecutionError):
    error_type = "rate_limited_locally"


class CancelledError(ExecutionError):
    error_type = "cancelled"
    status = "cancelled"


class ConfigurationError(LlmError):
    exit_code = 2
    error_type = "configuration_error"


class AuthenticationError(ConfigurationError):
    error_type = "authentication_error"


class ModelNotFoundError(ConfigurationError):
    error_type = "model_not_found"


class BudgetExceededError(ConfigurationError):
    error_type = "budget_exceeded"


class ReplayMissError(ConfigurationError):
    error_type = "replay_miss"


class TaskSpecError(LlmError):
    exit_code = 3
    error_type = "task_spec_error"


class InvalidRequestError(LlmError):
    exit_code = 3
    error_type = "invalid_request"


class ContextLengthExceededError(InvalidRequestError):
    """The prompt (plus max_tokens, for some providers) is over the model's context window: the
    same request fails again on this model, but a model with a larger window may take it."""

    error_type = "context_length_exceeded"
