"""TaskSpec: stdin bytes -> validated task, or a TaskSpecError naming the field at fault (exit 3)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from .errors import TaskSpecError
from .request import LlmRequest, Message
from .schema_check import compile_schema

DEFAULT_MAX_TOKENS = 4000
DEFAULT_TIMEOUT_SECONDS = 600.0
DEFAULT_MAX_RETRIES = 2
# A spec larger than this is rejected before anything is parsed or sent.
MAX_SPEC_BYTES = 10 * 1024 * 1024
# Deeper JSON (only free-form `metadata`/`custom` can be deep) is rejected: echoing it back must
# never hit the interpreter's recursion limit.
MAX_NESTING_DEPTH = 64

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas")


def max_spec_bytes() -> int:
    override = os.environ.get("LLM_EXEC_MAX_SPEC_BYTES", "")
    return int(override) if override.isdigit() else MAX_SPEC_BYTES


def read_spec(path: str | None) -> bytes:
    """The spec's bytes from `path` (None or "-": stdin), reading at most one byte past the size
    limit, so memory stays bounded whatever is piped in."""
    import sys

    limit = max_spec_bytes()
    if path and path != "-":
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    else:
        data = sys.stdin.buffer.read(limit + 1)
        if len(data) > limit:
            # Drain the rest without keeping it, so the writer sees its input consumed, not EPIPE.
            while sys.stdin.buffer.read(1 << 20):
                pass
    if len(data) > limit:
        raise TaskSpecError(f"task spec is larger than the limit of {limit} bytes (LLM_EXEC_MAX_SPEC_BYTES)")
    return data


@cache
def load_schema(name: str) -> dict[str, Any]:
    with open(os.path.join(SCHEMA_DIR, f"{name}.schema.json"), encoding="utf-8") as handle:
        return json.load(handle)


@cache
def _validator(name: str) -> Any:
    # Imported here: jsonschema costs start-up time that --help and --version never need.
    from jsonschema import Draft202012Validator

    # The schema ships with the package and is tested, so skip check_schema() on every run.
    return Draft202012Validator(load_schema(name))


# -- the fast path for valid specs -------------------------------------------------------------------
#
# jsonschema costs ~40 ms to import on every executor start, more than the rest of our code. Most
# specs are valid, so a check compiled from the schema (llm_exec.schema_check) decides first, and
# only a spec it does not pass goes to jsonschema, which finds and names the error.


@cache
def fast_check(name: str) -> Callable[[Any], bool] | None:
    """The compiled check for schema `name`, or None when it uses a keyword not implemented here."""
    return compile_schema(load_schema(name))


def _reject_constant(name: str) -> float:
    raise TaskSpecError(f"task spec contains {name}, which is not valid JSON")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise TaskSpecError(f"duplicate key {key!r} in task spec", field=key)
        result[key] = value
    return result


def parse_json(data: bytes) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity, no duplicate keys, bounded size."""
    limit = max_spec_bytes()
    if len(data) > limit:
        raise TaskSpecError(f"task spec is {len(data)} bytes; the limit is {limit} bytes")
    if not data.strip():
        raise TaskSpecError("no task spec on input (expected a JSON object)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TaskSpecError(f"task spec is not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(
            text, parse_constant=_reject_constant, object_pairs_hook=_reject_duplicates
        )
    except json.JSONDecodeError as exc:
        raise TaskSpecError(
            f"task spec is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise TaskSpecError("task spec is nested too deeply") from None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """" (did you mean 'prompt'?)" for a close known name (`promt`), else ""."""
    from difflib import get_close_matches  # deferred: error path only

    close = get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _field_path(path: Any) -> str | None:
    parts: list[str] = []
    for item in path:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(f".{item}" if parts else str(item))
    return "".join(parts) or None


def validate(instance: Any, schema_name: str = "task") -> None:
    """Raise TaskSpecError for the most relevant schema violation, naming its field."""
    if not isinstance(instance, dict):
        raise TaskSpecError(f"task spec must be a JSON object, not {type(instance).__name__}")
    depth = nesting_depth(instance, MAX_NESTING_DEPTH)
    if depth > MAX_NESTING_DEPTH:
        raise TaskSpecError(f"task spec is nested deeper than {MAX_NESTING_DEPTH} levels")
    check = fast_check(schema_name)
    if check is not None and check(instance):
        return
    # The first error in schema order: the schemas list cheap checks first (type, unknown fields,
    # maxItems before items), so a huge array fails in microseconds instead of being walked whole.
    error = next(_validator(schema_name).iter_errors(instance), None)
    if error is None:
        return
    field = _field_path(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = error.schema.get("properties", {})
        extra = sorted(k for k in error.instance if k not in allowed)
        name = extra[0] if extra else "?"
        field = f"{field}.{name}" if field else name
        raise TaskSpecError(f"unknown field {field!r}{did_you_mean(name, allowed)}", field=field)
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        field = f"{field}.{missing[0]}" if field else missing[0]
        raise TaskSpecError(f"missing required field {field!r}", field=field)
    if error.validator == "anyOf" and not error.absolute_path:
        raise TaskSpecError(
            "task spec needs at least one of 'messages', 'prompt' or 'description'",
            field="prompt",
        )
    where = f"field {field!r}" if field else "task spec"
    raise TaskSpecError(f"{where}: {_describe(error)}", field=field)


_TEMPLATES = {
    "type": "must be of type {value}",
    "enum": "must be one of {value}",
    "minimum": "must be >= {value}",
    "maximum": "must be <= {value}",
    "exclusiveMinimum": "must be > {value}",
    "minItems": "must have at least {value} items",
    "maxItems": "must have at most {value} items",
    "minLength": "must be at least {value} characters long",
    "maxLength": "must be at most {value} characters long",
    "pattern": "must match the pattern {value}",
}


def _describe(error: Any) -> str:
    """A message that never embeds the offending value (it may be megabytes long)."""
    template = _TEMPLATES.get(error.validator)
    if template is not None:
        return template.format(value=json.dumps(error.validator_value))
    return error.message if len(error.message) <= 200 else error.message[:200] + "…"


def nesting_depth(value: Any, limit: int) -> int:
    """Depth of nested arrays/objects, counted iteratively (no recursion), stopping past `limit`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


@dataclass(frozen=True)
class TaskSpec:
    """A validated task. `raw` keeps the spec as given (for echoing and dry runs)."""

    raw: Mapping[str, Any]

    def get(self, name: str, default: Any = None) -> Any:
        return self.raw.get(name, default)

    @property
    def task_id(self) -> str | None:
        return self.raw.get("task_id")

    @property
    def agent(self) -> str | None:
        return self.raw.get("agent")

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.raw.get("metadata") or {})

    @property
    def stream(self) -> bool:
        return bool(self.raw.get("stream", False))

    @property
    def timeout_seconds(self) -> float:
        return float(self.raw.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS))

    @property
    def max_retries(self) -> int:
        return int(self.raw.get("max_retries", DEFAULT_MAX_RETRIES))

    def user_prompt(self) -> str | None:
        """`prompt`, else the rendered task when there are no messages either."""
        if "prompt" in self.raw:
            return self.raw["prompt"]
        if "messages" in self.raw:
            return None
        return render_task_prompt(self.raw)

    def provider_options(self, option_fields: Sequence[str]) -> dict[str, Any]:
        """The spec's values for the option fields a provider declares (BaseLlm.option_fields)."""
        return {name: self.raw[name] for name in option_fields if self.raw.get(name) is not None}

    def to_request(self, default_model: str, option_fields: Sequence[str] = ()) -> LlmRequest:
        messages: list[Message] = []
        if self.raw.get("system"):
            messages.append(Message("system", self.raw["system"]))
        messages.extend(Message(m["role"], m["content"]) for m in self.raw.get("messages", ()))
        prompt = self.user_prompt()
        if prompt is not None:
            messages.append(Message("user", prompt))
        return LlmRequest(
            messages=tuple(messages),
            model=self.raw.get("model") or default_model,
            max_tokens=int(self.raw.get("max_tokens", DEFAULT_MAX_TOKENS)),
            temperature=self.raw.get("temperature"),
            top_p=self.raw.get("top_p"),
            stop=tuple(self.raw.get("stop", ())),
            seed=self.raw.get("seed"),
            stream=self.stream,
            options=self.provider_options(option_fields),
        )


# Without a provider tokenizer (which would mean importing the SDKs), ~4 characters per token is
# the usual rule of thumb for English text and code; each message adds a few framing tokens.
CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4


def prompt_texts(task: TaskSpec) -> list[str]:
    """The texts that become the prompt, as the executors render them."""
    texts = [task.get("system")] if task.get("system") else []
    texts.extend(m["content"] for m in task.get("messages", ()))
    prompt = task.user_prompt()
    if prompt is not None:
        texts.append(prompt)
    return texts


def estimate_prompt_tokens(task: TaskSpec) -> int:
    """An upper-leaning estimate of the prompt's tokens, for routing costs, budgets and rate limits."""
    return sum(-(-len(text) // CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE for text in prompt_texts(task))


def render_task_prompt(task: Mapping[str, Any]) -> str:
    """The stable template for the seed's task shape (documented in the README).

        # {title}

        {description}

        ## Deliverables
        - {each deliverable}

        ## Success criteria
        - {each criterion}

    Sections with no content are left out.
    """
    sections: list[str] = []
    if task.get("title"):
        sections.append(f"# {task['title']}")
    if task.get("description"):
        sections.append(task["description"])
    for heading, key in (("Deliverables", "deliverables"), ("Success criteria", "success_criteria")):
        items = task.get(key) or []
        if items:
            sections.append(f"## {heading}\n" + "\n".join(f"- {item}" for item in items))
    return "\n\n".join(sections)


def parse_task(data: bytes) -> TaskSpec:
    instance = parse_json(data)
    validate(instance)
    if b"\\u" in data:  # only an escape can produce a lone surrogate (raw ones are not UTF-8)
        check_unicode(instance)
    return TaskSpec(raw=instance)


def check_unicode(instance: Any) -> None:
    """A string holding a lone surrogate (JSON allows the escape "\\ud800", Unicode has no such
    character) cannot be encoded for any provider: a spec error naming the field, before any
    request (one provider would send it mangled, the others fail mid-call)."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(instance, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            stack.extend((item, (*path, key)) for key, item in value.items())
            stack.extend((key, (*path, key)) for key in value if isinstance(key, str))
        elif isinstance(value, list):
            stack.extend((item, (*path, index)) for index, item in enumerate(value))
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                field = _field_path(path)
                where = f"field {field!r}" if field else "task spec"
                raise TaskSpecError(f"{where} is not valid Unicode: a lone surrogate escape "
                                    f"(\\u{ord(value[exc.start]):04x}) at character {exc.start}",
                                    field=field) from None
