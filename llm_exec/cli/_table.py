"""Plain-text tables for the `llm-exec` listings (providers, models): left-aligned columns."""

from __future__ import annotations

from collections.abc import Sequence


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
