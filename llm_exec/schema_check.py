"""A predicate compiled from a JSON Schema that accepts only what jsonschema (Draft 2020-12) accepts.

jsonschema takes ~40 ms to import, more than the rest of an executor's own start-up or of a routing
decision. Most task specs and registries are valid, so this check decides first: it answers True
only for an instance the schema accepts (for the keywords below, with jsonschema's semantics,
erring towards False), and everything else goes to jsonschema, which finds and names each problem.
A schema using any other keyword compiles to None (every instance then goes to jsonschema).
Used by llm_exec.task (task specs) and llm_exec.routing.registry (registries); tests hold both
compiled checks to jsonschema's answers on generated instances.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]

# Keywords that never reject an instance (jsonschema asserts `format` only with a format checker).
_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "title", "description", "$comment", "default", "examples",
                          "format"})


class Unsupported(Exception):
    """The schema uses a keyword (or a form of one) the compiled check does not implement."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    # jsonschema counts 2.0 as an integer, as the JSON Schema spec says.
    "integer": lambda v: _is_number(v) and (isinstance(v, int) or v.is_integer()),
}


class _Compiler:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}

    def compile(self, schema: Any) -> Check:
        if not isinstance(schema, dict):
            raise Unsupported(f"schema {schema!r}")
        checks = [self.keyword(k, v) for k, v in schema.items()
                  if k not in _ANNOTATIONS and k != "additionalProperties"]
        if "additionalProperties" in schema:
            if schema["additionalProperties"] is not False:
                raise Unsupported("additionalProperties other than false")
            known = frozenset(schema.get("properties", ()))
            checks.append(lambda v: not isinstance(v, dict) or known.issuperset(v))
        if len(checks) == 1:
            return checks[0]
        return lambda v: all(check(v) for check in checks)

    def ref(self, target: str) -> Check:
        """A `$ref` to "#/$defs/<name>", compiled once; looked up at call time so that a
        definition may refer to itself."""
        if not target.startswith("#/$defs/") or "/" in target[len("#/$defs/"):]:
            raise Unsupported(f"$ref {target!r}")
        if target not in self.refs:
            self.refs[target] = lambda v: False  # placeholder while the definition compiles
            definition = self.root.get("$defs", {}).get(target[len("#/$defs/"):])
            if definition is None:
                raise Unsupported(f"$ref {target!r} names no definition")
            self.refs[target] = self.compile(definition)
        refs = self.refs
        return lambda v: refs[target](v)

    def keyword(self, keyword: str, value: Any) -> Check:
        if keyword == "$ref":
            return self.ref(value)
        if keyword == "type":
            types = [_TYPES[name] for name in ([value] if isinstance(value, str) else value)]
            return lambda v: any(is_type(v) for is_type in types)
        if keyword == "properties":
            props = {name: self.compile(sub) for name, sub in value.items()}
            return lambda v: not isinstance(v, dict) or all(props[k](v[k]) for k in v.keys() & props.keys())
        if keyword == "propertyNames":
            names = self.compile(value)
            return lambda v: not isinstance(v, dict) or all(names(k) for k in v)
        if keyword == "anyOf":
            options = [self.compile(sub) for sub in value]
            return lambda v: any(option(v) for option in options)
        if keyword == "required":
            required = tuple(value)
            return lambda v: not isinstance(v, dict) or all(name in v for name in required)
        if keyword == "enum":
            if not all(isinstance(item, str) for item in value):
                raise Unsupported("enum of non-strings")
            allowed = frozenset(value)
            return lambda v: isinstance(v, str) and v in allowed
        if keyword == "const":
            # Strings and integers only, compared with their exact type: jsonschema's equality
            # (1 == 1.0, but never True) then decides the rest.
            if type(value) not in (str, int):
                raise Unsupported("const other than a string or an integer")
            kind = type(value)
            return lambda v: type(v) is kind and v == value
        if keyword == "items":
            item = self.compile(value)
            return lambda v: not isinstance(v, list) or all(item(x) for x in v)
        if keyword in ("minItems", "maxItems", "minLength", "maxLength"):
            kind = list if keyword.endswith("Items") else str
            if keyword.startswith("min"):
                return lambda v: not isinstance(v, kind) or len(v) >= value
            return lambda v: not isinstance(v, kind) or len(v) <= value
        if keyword == "uniqueItems":
            if value is not True:
                raise Unsupported("uniqueItems false")
            # Strings only: jsonschema's equality is subtler for other items, which it then decides.
            return lambda v: not isinstance(v, list) or (all(isinstance(x, str) for x in v) and len(set(v)) == len(v))
        if keyword == "pattern":
            search = re.compile(value).search  # jsonschema uses re.search too
            return lambda v: not isinstance(v, str) or search(v) is not None
        bounds: dict[str, Check] = {"minimum": lambda v: v >= value, "maximum": lambda v: v <= value,
                                    "exclusiveMinimum": lambda v: v > value, "exclusiveMaximum": lambda v: v < value}
        if keyword in bounds and _is_number(value):
            within = bounds[keyword]
            return lambda v: not _is_number(v) or within(v)
        raise Unsupported(keyword)


def compile_schema(schema: Mapping[str, Any]) -> Check | None:
    """The compiled check for `schema`, or None when it uses a keyword not implemented here."""
    try:
        return _Compiler(schema).compile(schema)
    except (Unsupported, KeyError, TypeError, AttributeError, re.error):
        return None
