"""`llm-exec report`: the usage ledger as one self-contained HTML page (cost per day and agent,
latency per model, errors, the most expensive calls), charts drawn as inline SVG.

data.py works the numbers out of ledger rows, svg.py draws, page.py writes the page; the click
command (cli/report_command.py) only reads the store and writes the file.
"""

from __future__ import annotations

from .data import ReportData, build_report_data
from .page import render_html

__all__ = ["ReportData", "build_report_data", "render_html"]
