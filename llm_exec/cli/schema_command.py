"""`llm-exec schema NAME`: print one of the bundled JSON Schemas (the copy the executors validate with)."""

from __future__ import annotations

import json

import click

SCHEMAS = ("task", "result", "registry")

EXAMPLE = """\b
Examples:
  llm-exec schema task
  llm-exec schema registry > registry.schema.json
"""


@click.command(epilog=EXAMPLE)
@click.argument("name", type=click.Choice(SCHEMAS))
def schema(name: str) -> None:
    """Print the JSON Schema (2020-12) of a task spec, a result or an llm-route registry."""
    from ..task import load_schema

    click.echo(json.dumps(load_schema(name), indent=2))
