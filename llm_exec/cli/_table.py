"""The `llm-exec` listings (providers, models): plain-text tables with left-aligned columns, or JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns as wide as their widest cell; a row shorter than the headers (an error message in
    place of the remaining cells) runs on in its last cell, which sets no width."""
    widths = [len(header) for header in headers]
    for row in rows:
        sized = row if len(row) == len(headers) else row[:-1]
        for index, cell in enumerate(sized):
            widths[index] = max(widths[index], len(cell))
    lines = [headers, *rows]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)).rstrip()
                     for line in lines)


def show_listing(command: str, rows: list[dict[str, Any]], render: Callable[[list[dict[str, Any]]], str], *,
                 as_json: bool) -> None:
    """Print a per-provider listing (JSON or a table). A provider that could not be loaded is in the
    listing with its error, repeated on stderr, and the exit code is 2."""
    click.echo(json.dumps({"providers": rows}, indent=2) if as_json else render(rows))
    broken = [row for row in rows if row["error"]]
    for row in broken:
        click.echo(f"llm-exec {command}: {row['error']}", err=True)
    if broken:
        sys.exit(2)
