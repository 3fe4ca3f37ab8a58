"""Error translation shared by the openai and anthropic SDKs.

Both SDKs are generated from the same template (Stainless) and raise the same exception shapes:
APIStatusError (status_code, body, response, request_id), APITimeoutError, APIConnectionError,
APIResponseValidationError. Each provider passes its SDK module and handles its own quirks first.
"""

from __future__ import annotations

import json
from types import ModuleType

from ..errors import ConnectionError, LlmError, ResponseError, TimeoutError
from ._http_errors import body_message, error_from_status, translate_httpx_error


def translate_sdk_error(exc: BaseException, sdk: ModuleType, *, status: int | None = None) -> LlmError | None:
    """`status` overrides the HTTP status (used for errors sent inside a 200 stream)."""
    if isinstance(exc, sdk.APIStatusError):
        return error_from_status(
            status or exc.status_code,
            body_message(exc.body, exc.message),
            headers=exc.response.headers,
            request_id=getattr(exc, "request_id", None),
            body=exc.body,  # the SDK's `error` object: read for context overflow, bad key, unknown model
        )
    if isinstance(exc, sdk.APITimeoutError):
        return TimeoutError("request timed out", error_type="read_timeout")
    if isinstance(exc, sdk.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = f": {type(cause).__name__}: {cause}" if cause else ""
        return ConnectionError(f"connection failed{detail}")
    if isinstance(exc, sdk.APIResponseValidationError):
        return ResponseError(f"response did not match the API schema: {exc.message}")
    if isinstance(exc, json.JSONDecodeError):
        return ResponseError(f"response body is not valid JSON: {exc.msg}")
    return translate_httpx_error(exc)
