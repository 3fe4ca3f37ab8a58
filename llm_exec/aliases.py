"""Model aliases and local deprecation notes.

Two sources, one shape: the user's `$XDG_CONFIG_HOME/llm-exec/aliases.yaml` (default
`~/.config/llm-exec/aliases.yaml`; `LLM_EXEC_ALIASES` names another file) and an agent
registry's `aliases:` / `deprecated:` sections (which win over the user's file for llm-route):

    aliases:
      fast: gpt:gpt-5.4-mini          # PROVIDER:MODEL, or only MODEL
      smart: claude:claude-sonnet-4-6
      legacy:
        model: gpt:gpt-4o
        deprecated: {end_of_life: 2026-06-30, replacement: fast}
    deprecated:                       # models to warn about, whatever name reached them
      gpt-4o: {end_of_life: 2026-06-30, replacement: gpt-5.4-mini}

A task's `model: fast` is sent as `gpt-5.4-mini`; the result shows both (`model` is what was sent,
`model_alias` the name the task used). An alias that names another provider than the executor's
is a configuration error (exit 2) — except for `llm-exec run` without a provider, where the alias
chooses it. A bad file is exit 2 naming the file, the line and the field.

Start-up cost: a stat of the file when it does not exist (the usual case); PyYAML only when it does.
Every executor imports this module, so it imports nothing that the runner does not already have.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import ALIASES_ENV, user_aliases_file
from .errors import ConfigurationError

WHAT = "alias file"
ERROR_TYPE = "invalid_aliases"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,199}$")


@dataclass(frozen=True)
class Alias:
    name: str
    model: str
    provider: str | None  # a registered provider name, as written; None: any provider
    source: str  # "file:line"


@dataclass(frozen=True)
class DeprecationNote:
    model: str  # the model id sent (or the alias name, for a deprecated alias)
    end_of_life: str | None  # ISO date
    replacement: str | None
    source: str


@dataclass(frozen=True)
class AliasTable:
    aliases: Mapping[str, Alias] = field(default_factory=dict)
    deprecated: Mapping[str, DeprecationNote] = field(default_factory=dict)

    def resolve(self, model: str | None) -> Alias | None:
        return self.aliases.get(model) if model else None

    def note_for(self, *names: str | None) -> DeprecationNote | None:
        """The first deprecation note for any of `names` (the alias, then the model sent)."""
        return next((self.deprecated[name] for name in names if name and name in self.deprecated), None)

    def over(self, base: AliasTable) -> AliasTable:
        """This table's entries win over `base`'s (a registry over the user's file)."""
        return AliasTable({**base.aliases, **self.aliases}, {**base.deprecated, **self.deprecated})

    def __bool__(self) -> bool:
        return bool(self.aliases or self.deprecated)


EMPTY = AliasTable()


def load_user_aliases() -> AliasTable:
    """The user's alias file, or EMPTY when there is none (LLM_EXEC_ALIASES must exist when set)."""
    path, _ = user_aliases_file()
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        if os.environ.get(ALIASES_ENV):
            raise ConfigurationError(f"alias file {path} (from {ALIASES_ENV}) does not exist",
                                     field=ALIASES_ENV, error_type=ERROR_TYPE) from None
        return EMPTY
    except OSError as exc:
        raise ConfigurationError(f"cannot read alias file {path}: {exc.strerror or exc}", field=ALIASES_ENV,
                                 error_type=ERROR_TYPE) from None
    from .yaml_lines import invalid, load_yaml

    document, lines = load_yaml(data, path, WHAT, ERROR_TYPE)
    if document is None:
        return EMPTY
    if not isinstance(document, dict):
        raise invalid(path, [(1, None, "expected a mapping with `aliases:` and/or `deprecated:`")], WHAT, ERROR_TYPE)
    problems: list[Any] = []
    unknown = sorted(str(key) for key in document if key not in ("aliases", "deprecated"))
    from .yaml_lines import line_of

    for key in unknown:
        problems.append((line_of(lines, (key,)), key, f"unknown field {key!r} (expected aliases or deprecated)"))
    table = parse_sections(document, lines, path, problems)
    if problems:
        raise invalid(path, problems, WHAT, ERROR_TYPE)
    return table


def parse_sections(document: Mapping[str, Any], lines: Any, path: str, problems: list[Any],
                   prefix: tuple[Any, ...] = ()) -> AliasTable:
    """The `aliases:` and `deprecated:` sections of `document` (an alias file, or a registry: then
    `prefix` is empty too, as both sit at the top level). Problems are appended, never raised."""
    from .yaml_lines import format_path, line_of

    def problem(where: tuple[Any, ...], message: str) -> None:
        problems.append((line_of(lines, (*prefix, *where)), format_path((*prefix, *where)), message))

    aliases: dict[str, Alias] = {}
    deprecated: dict[str, DeprecationNote] = {}
    raw_aliases = document.get("aliases") or {}
    raw_deprecated = document.get("deprecated") or {}
    if not isinstance(raw_aliases, dict):
        problem(("aliases",), "must be a mapping of alias name -> PROVIDER:MODEL")
        raw_aliases = {}
    if not isinstance(raw_deprecated, dict):
        problem(("deprecated",), "must be a mapping of model -> {end_of_life, replacement}")
        raw_deprecated = {}
    for name, value in raw_aliases.items():
        where = ("aliases", name)
        source = _source(path, line_of(lines, (*prefix, *where)))
        if not isinstance(name, str) or not _NAME.match(name):
            problem(where, f"alias name {name!r} must be a plain identifier")
            continue
        note: Any = None
        if isinstance(value, dict):
            extra = sorted(str(k) for k in value if k not in ("model", "deprecated"))
            if extra:
                problem((*where, extra[0]), f"unknown field {extra[0]!r} (expected model, deprecated)")
                continue
            note, value = value.get("deprecated"), value.get("model")
        if not isinstance(value, str) or not value.strip():
            problem(where, "must be PROVIDER:MODEL (e.g. gpt:gpt-5.4-mini) or MODEL")
            continue
        provider, sep, model = value.partition(":")
        if not sep:
            provider, model = "", value
        if not model or (sep and not provider):
            problem(where, f"{value!r} must be PROVIDER:MODEL or MODEL")
            continue
        aliases[name] = Alias(name, model, provider or None, source)
        if note is not None:
            parsed = _note(name, note, source, lambda message, w=where: problem((*w, "deprecated"), message))
            if parsed is not None:
                deprecated[name] = parsed
    for model, note in raw_deprecated.items():
        where = ("deprecated", model)
        source = _source(path, line_of(lines, (*prefix, *where)))
        if not isinstance(model, str) or not model:
            problem(where, "a model id must be a string")
            continue
        parsed = _note(model, note, source, lambda message, w=where: problem(w, message))
        if parsed is not None:
            deprecated[model] = parsed
    return AliasTable(aliases, deprecated)


def _source(path: str, line: int | None) -> str:
    return f"{path}:{line}" if line else path


def _note(model: str, raw: Any, source: str, problem: Any) -> DeprecationNote | None:
    if raw is True or raw is None:
        return DeprecationNote(model, None, None, source)
    if not isinstance(raw, dict):
        problem("must be true or {end_of_life: YYYY-MM-DD, replacement: MODEL}")
        return None
    extra = sorted(str(k) for k in raw if k not in ("end_of_life", "replacement"))
    if extra:
        problem(f"unknown field {extra[0]!r} (expected end_of_life, replacement)")
        return None
    end = raw.get("end_of_life")
    import datetime  # deferred: only an alias file with dates needs it (every executor imports this module)

    if isinstance(end, datetime.date):  # YAML reads an unquoted 2026-06-30 as a date
        end = end.isoformat()
    if end is not None:
        try:
            end = datetime.date.fromisoformat(str(end)).isoformat()
        except ValueError:
            problem(f"end_of_life {end!r} is not a YYYY-MM-DD date")
            return None
    replacement = raw.get("replacement")
    if replacement is not None and not isinstance(replacement, str):
        problem("replacement must be a model id")
        return None
    return DeprecationNote(model, end, replacement, source)
