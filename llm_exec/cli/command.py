"""The executors' command line: flags -> RunOptions -> runner.run. No behaviour lives here."""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from typing import Any

import click

from .. import __version__
from ..config import Secrets
from ..errors import CancelledError, ConfigurationError, LlmError
from ..providers.registry import get_provider
from ..result import Output, build_result
from ..runner import PROCESS_START, RunOptions, run

EXAMPLE = """\b
Example (runs against the bundled emulator, no key needed):
  llm-exec-emulator --port 8765 &
  export {key_var}=test {url_var}={emulator_url}
  echo '{{"task_id": "t1", "prompt": "Say hello"}}' | {program}
"""

_EMULATOR_URLS = {
    "claude": "http://127.0.0.1:8765",
    "gpt": "http://127.0.0.1:8765/v1",
    "gemini": "http://127.0.0.1:8765",
    "custom": "http://127.0.0.1:8765/custom",
    "llama": "http://127.0.0.1:8765",
}


def _help_text(executor: str, program: str) -> str:
    provider = get_provider(executor)
    key_var = provider.key_env_vars[0] if provider.key_env_vars else "LLM_EXEC_CUSTOM_API_KEY"
    url_var = provider.base_url_env_vars[0] if provider.base_url_env_vars else "OLLAMA_HOST"
    notes = (provider.__doc__ or "").strip().splitlines()[0] if provider.__doc__ else ""
    lines = [
        f"Run one LLM task with {provider.name} and print one result JSON on stdout.",
        "",
        "Reads a task spec (JSON, see --schema task) from stdin or --input. Exit codes: 0 success,"
        " 1 execution error, 2 configuration error, 3 task-spec error.",
        "",
        f"Default model: {provider.default_model}. Defaults: max_tokens 4000, timeout_seconds 600"
        " (counted from process start, retries included), max_retries 2.",
        f"Key: {' or '.join(provider.key_env_vars) or 'none required'}"
        f"{'' if provider.requires_key else ' (optional)'}; the spec's api_key_env names another"
        f" variable. Endpoint: {' or '.join(provider.base_url_env_vars) or 'api_endpoint'}"
        f" (default {provider.default_base_url or 'none'}); the spec's api_endpoint overrides it.",
    ]
    if not provider.can_stream:
        lines += ["", "This executor has no streaming contract: with --stream it writes only the result line."]
    if notes:
        lines += ["", notes]
    lines += ["", EXAMPLE.format(key_var=key_var, url_var=url_var, emulator_url=_EMULATOR_URLS.get(executor, ""),
                                 program=program)]
    return "\n".join(lines)


def _print_schema(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    from ..task import load_schema

    click.echo(json.dumps(load_schema(value), indent=2))
    ctx.exit(0)


def make_command(executor: str, program: str) -> click.Command:
    @click.command(name=program, help=_help_text(executor, program),
                   context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
    @click.option("--input", "input_path", type=click.Path(dir_okay=False, allow_dash=True),
                  help="Read the task spec from FILE instead of stdin.")
    @click.option("--output", "output_path", type=click.Path(dir_okay=False, writable=True),
                  help="Write the result (and stream lines) to FILE instead of stdout.")
    @click.option("--stream", is_flag=True,
                  help='Stream: NDJSON {"type":"delta","text":...} lines, then the result line.')
    @click.option("--dry-run", is_flag=True,
                  help="Validate and print the provider request that would be sent (key redacted); no network.")
    @click.option("--schema", type=click.Choice(["task", "result"]), callback=_print_schema,
                  expose_value=False, is_eager=True, help="Print the task or result JSON Schema and exit.")
    @click.option("--pretty", is_flag=True, help="Indent the result object.")
    @click.version_option(__version__, "--version", prog_name=program, message="%(prog)s %(version)s")
    def command(input_path: str | None, output_path: str | None, stream: bool, dry_run: bool,
                pretty: bool) -> int:
        return run(RunOptions(executor=executor, program=program, input_path=input_path, output_path=output_path,
                              stream=stream, dry_run=dry_run, pretty=pretty, started=PROCESS_START))

    return command


def main(executor: str, program: str, argv: list[str] | None = None) -> None:
    """Console-script entry: exit with the runner's code. A bad flag is a configuration error
    (exit 2) and a bug of ours an internal error (exit 1); both still write one result object."""
    try:
        code: Any = make_command(executor, program).main(args=argv, prog_name=program, standalone_mode=False)
    except click.ClickException as exc:
        field = getattr(getattr(exc, "param", None), "name", None)
        code = _fail(executor, program, ConfigurationError(exc.format_message(), field=field, error_type="usage_error"))
    except click.exceptions.Abort:
        code = _fail(executor, program, CancelledError("aborted"))
    except Exception as exc:
        if os.environ.get("LLM_EXEC_RAISE"):
            raise
        traceback.print_exc(file=sys.stderr)
        code = _fail(executor, program, LlmError(f"internal error: {type(exc).__name__}: {exc}"))
    sys.exit(code if isinstance(code, int) else 0)


def _fail(executor: str, program: str, error: LlmError) -> int:
    """The result object for a failure outside the runner (flag parsing, start-up)."""
    secrets = Secrets.from_env()
    sys.stderr.write(secrets.redact(f"{program}: {error.type}: {error.message}\n"))
    try:
        provider = get_provider(executor).name
    except Exception:  # the failure may be this very lookup
        provider = executor
    Output(None, secrets).result(build_result(
        provider=provider, task=None, model=None, elapsed=time.monotonic() - PROCESS_START,
        attempts=0, error=error))
    return error.exit_code
