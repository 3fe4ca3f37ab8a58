"""YAML config files with line numbers: PyYAML's safe constructor builds the data (on libyaml's
parser when available; PyYAML's own parser reports any error), and the composed node tree beside it
gives every value its line, since plain dicts and lists keep none. Shared by the agent registry and
the model-alias file, so both name "line 14: agents[2].type" the same way.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

# Reported at most: the first few errors fix most files, and a list of hundreds helps nobody.
MAX_REPORTED_ERRORS = 10

Lines = dict[tuple[Any, ...], int]
Problem = tuple[int | None, str | None, str]  # (line, field, message)


@cache
def loader_class(fast: bool = False) -> Any:
    """PyYAML's safe loader, except that only true/false are booleans (YAML 1.2): under YAML 1.1
    an agent named `off` or `no`, or a model `on`, would silently become a boolean. `fast`: the same
    on libyaml's parser (CSafeLoader, ~10x faster), when PyYAML was built with it."""
    import yaml  # deferred: only routing needs YAML, and only when the registry cache misses

    base = yaml.SafeLoader
    if fast:
        base = getattr(yaml, "CSafeLoader", None)
        if base is None:
            return None

    class RegistryLoader(base):  # type: ignore[valid-type,misc]
        pass

    bool_tag = "tag:yaml.org,2002:bool"
    RegistryLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != bool_tag]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    RegistryLoader.add_implicit_resolver(bool_tag, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                         list("tTfF"))
    return RegistryLoader


def load_yaml(data: bytes | str, path: str, what: str, error_type: str) -> tuple[Any, Lines]:
    import yaml

    fast = loader_class(fast=True)
    if fast is not None:
        try:
            return compose(fast, data, path, what, error_type)
        except yaml.YAMLError:
            # libyaml words its errors (and places some) differently: the pure-Python parser,
            # which defines the messages, parses the file again and reports.
            pass
    try:
        return compose(loader_class(), data, path, what, error_type)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise invalid(path, [(line, None, f"not valid YAML: {problem}")], what, error_type) from None
    except yaml.YAMLError as exc:  # e.g. a byte sequence that is not UTF-8
        raise invalid(path, [(None, None, f"not valid YAML: {exc}")], what, error_type) from None


def compose(loader: Any, data: bytes | str, path: str, what: str, error_type: str) -> tuple[Any, Lines]:
    loader = loader(data)
    lines: Lines = {}
    duplicates: list[Problem] = []
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines
        # Lines first: constructing the document rewrites merge keys (<<) inside the node tree.
        map_lines(node, (), lines, duplicates)
        if duplicates:
            raise invalid(path, duplicates, what, error_type)
        return loader.construct_document(node), lines
    finally:
        loader.dispose()


def map_lines(node: Any, path: tuple[Any, ...], lines: Lines, duplicates: list[Problem]) -> None:
    """Record the line of every value (for a mapping value: the line of its key), and report
    repeated keys, which PyYAML would otherwise resolve silently to the last one."""
    import yaml

    # Iterative, so a deeply nested file cannot exhaust the interpreter's stack.
    stack: list[tuple[Any, tuple[Any, ...], int]] = [(node, path, node.start_mark.line + 1)]
    seen_nodes: set[int] = set()
    while stack:
        current, where, line = stack.pop()
        lines.setdefault(where, line)
        if id(current) in seen_nodes:  # an alias: its lines are those of the anchor
            continue
        seen_nodes.add(id(current))
        if isinstance(current, yaml.MappingNode):
            keys: dict[Any, int] = {}
            for key_node, value_node in current.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key_line = key_node.start_mark.line + 1
                if key_node.value in keys:
                    duplicates.append((key_line, format_path((*where, key_node.value)),
                                       f"duplicate key {key_node.value!r} (first on line {keys[key_node.value]})"))
                keys[key_node.value] = key_line
                stack.append((value_node, (*where, key_node.value), key_line))
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                stack.append((item, (*where, index), item.start_mark.line + 1))


def line_of(lines: Lines, path: tuple[Any, ...]) -> int | None:
    """The line of `path`, else of its nearest ancestor that has one."""
    for end in range(len(path), -1, -1):
        line = lines.get(tuple(path[:end]))
        if line is not None:
            return line
    return None


def format_path(path: tuple[Any, ...]) -> str | None:
    parts: list[str] = []
    for item in path:
        parts.append(f"[{item}]" if isinstance(item, int) else (f".{item}" if parts else str(item)))
    return "".join(parts) or None


def invalid(path: str | Path, problems: list[Problem], what: str, error_type: str) -> ConfigurationError:
    """One ConfigurationError (exit 2) listing the first problems, each as "line N: field: message"."""
    shown = problems[:MAX_REPORTED_ERRORS]
    rendered = []
    for line, where, message in shown:
        prefix = ": ".join(part for part in (f"line {line}" if line else None, where) if part)
        rendered.append(f"{prefix}: {message}" if prefix else message)
    more = len(problems) - len(shown)
    if more > 0:
        rendered.append(f"... and {more} more")
    first = rendered[0] if len(rendered) == 1 else "\n  " + "\n  ".join(rendered)
    return ConfigurationError(f"invalid {what} {path}: {first}", field=shown[0][1] if shown else None,
                              error_type=error_type)
