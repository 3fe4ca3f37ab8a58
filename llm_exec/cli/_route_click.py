"""The `llm-route` command as click defines it: options, help text, usage errors, `agents`.

llm_exec.cli.route reads the common command lines itself (loading click costs ~20 ms a run) and
hands everything else to `main` here; both end in routing.router.route with the same RouteOptions.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from .. import __version__
from ..edge import guarded
from ..routing.listing import ListOptions, list_agents
from ..routing.router import PROGRAM, RouteOptions, route
from .options import print_schema
from .route import fail, log

HELP = """Route one task to the best agent in the registry, run its executor and print one result JSON.

\b
Reads a task spec (JSON, see --schema task) from stdin or --input; the routing fields
required_capabilities, preferred_types, agent, complexity, max_cost_usd and fallback choose the
agent. The result is the chosen executor's result plus a "route" object (chosen, ranking, tried,
estimated_cost_usd, actual_cost_usd). Exit codes: 0 success, 1 execution error, 2 configuration
error (registry, no agent qualifies), 3 task-spec error.

\b
Registry: --registry FILE, else $LLM_EXEC_REGISTRY, else ./llm-exec.yaml, else
$XDG_CONFIG_HOME/llm-exec/registry.yaml (see --schema registry).

\b
Examples:
  echo '{"prompt": "Summarise RFC 2119", "required_capabilities": ["research"]}' | llm-route --explain
  echo '{"prompt": "Say hello"}' | llm-route --registry examples/registry.yaml
  echo '{"prompt": "Is 97 prime?"}' | llm-route --consensus 2
  llm-route agents
"""


@click.group(name=PROGRAM, help=HELP, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--registry", "registry_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="Agent registry YAML (overrides $LLM_EXEC_REGISTRY and the default locations).")
@click.option("--explain", is_flag=True,
              help="Print the routing decision as JSON (every agent kept or rejected and why, estimated "
                   "tokens and cost, ranking, failover order) without calling anything.")
@click.option("--consensus", type=click.IntRange(min=2), metavar="N",
              help="Run the top N candidates in parallel; report every output and an agreement verdict.")
@click.option("--input", "input_path", type=click.Path(dir_okay=False, allow_dash=True),
              help="Read the task spec from FILE instead of stdin.")
@click.option("--output", "output_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the result (and stream lines) to FILE instead of stdout.")
@click.option("--stream", is_flag=True, help="Stream the chosen executor's delta lines, then the result line.")
@click.option("--pretty", is_flag=True, help="Indent the result object.")
@click.option("--schema", type=click.Choice(["task", "result", "registry"]), callback=print_schema,
              expose_value=False, is_eager=True, help="Print a JSON Schema and exit.")
@click.version_option(__version__, "--version", prog_name=PROGRAM, message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, registry_path: str | None, explain: bool, consensus: int | None,
        input_path: str | None, output_path: str | None, stream: bool, pretty: bool) -> int | None:
    ctx.obj = registry_path
    if ctx.invoked_subcommand is not None:
        return None
    return route(RouteOptions(registry_path=registry_path, input_path=input_path, output_path=output_path,
                              explain=explain, consensus=consensus, stream=stream, pretty=pretty))


@cli.command(name="agents")
@click.option("--registry", "registry_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="Agent registry YAML.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def agents(ctx: click.Context, registry_path: str | None, as_json: bool) -> int:
    """List the registry: capabilities, model, price per 1M input/output tokens, whether the key is set."""
    return list_agents(ListOptions(registry_path=registry_path or ctx.obj, as_json=as_json))


def main(args: list[str]) -> None:
    """Run the click command: exit with the route's code. A bad flag is a configuration error
    (exit 2) and a bug of ours an internal error (exit 1); both still write one result object."""
    code: Any = guarded(lambda: cli.main(args=args, prog_name=PROGRAM, standalone_mode=False), fail, log,
                        click=True)
    sys.exit(code if isinstance(code, int) else 0)
