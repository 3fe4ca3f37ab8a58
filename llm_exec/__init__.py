"""llm-exec: run one LLM task against any provider behind one contract.

The public API (pinned by tests/test_public_api.py). Names resolve lazily so that importing the
package, which every executor does first, costs almost nothing.
"""

from __future__ import annotations

# typing.TYPE_CHECKING without importing typing (~2 ms): every executor start imports this package,
# and the warm path (llm_exec._entry -> daemon/client.py) needs nothing else from it.
TYPE_CHECKING = False

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "BaseLlm",
    "ConfigurationError",
    "ConnectionError",
    "ContentFilterError",
    "InvalidRequestError",
    "LlmError",
    "LlmRequest",
    "LlmResponse",
    "Message",
    "RateLimitError",
    "RetryPolicy",
    "ServiceUnavailableError",
    "TaskSpec",
    "TaskSpecError",
    "TimeoutError",
    "Usage",
    "__version__",
    "get_provider",
    "parse_task",
]

_LOCATIONS = {
    "BaseLlm": "llm_exec.providers.base",
    "LlmRequest": "llm_exec.request",
    "Message": "llm_exec.request",
    "LlmResponse": "llm_exec.response",
    "Usage": "llm_exec.response",
    "RetryPolicy": "llm_exec.retry",
    "TaskSpec": "llm_exec.task",
    "parse_task": "llm_exec.task",
    "get_provider": "llm_exec.providers.registry",
}

if TYPE_CHECKING:
    from typing import Any

    from .errors import (
        AuthenticationError,
        ConfigurationError,
        ConnectionError,
        ContentFilterError,
        InvalidRequestError,
        LlmError,
        RateLimitError,
        ServiceUnavailableError,
        TaskSpecError,
        TimeoutError,
    )
    from .providers.base import BaseLlm
    from .providers.registry import get_provider
    from .request import LlmRequest, Message
    from .response import LlmResponse, Usage
    from .retry import RetryPolicy
    from .task import TaskSpec, parse_task


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'llm_exec' has no attribute {name!r}")
    from importlib import import_module

    module = import_module(_LOCATIONS.get(name, "llm_exec.errors"))
    return getattr(module, name)
