"""The executors' command line: flags -> RunOptions -> runner.run (or batch.run_batch). No behaviour
lives here.

click is imported only when there are flags to parse: a call without any, the usual one, goes
straight to the runner (click's import and building the command cost ~10 ms of every start).
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..config import Secrets
from ..errors import CancelledError, ConfigurationError, LlmError
from ..providers.registry import get_provider
from ..result import Output, build_result
from ..runner import PROCESS_START, RunOptions, run

if TYPE_CHECKING:
    import click

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
    lines += [
        "",
        "Batch: with --batch, the input is JSONL (one task spec per line; blank lines are skipped) and the"
        " output one result line per spec, in input order, with at most --concurrency calls in flight"
        " (default 16). Each line's timeout_seconds counts from when that line starts; calls are not"
        " streamed. A bad line gets its exit-3 result and the batch goes on. Exit code: 0 when every line"
        " succeeded; when all failed lines share one code, that code; otherwise 1. SIGINT/SIGTERM write a"
        " cancelled result for every line in flight or not yet started, and exit 1.",
    ]
    if notes:
        lines += ["", notes]
    lines += ["", EXAMPLE.format(key_var=key_var, url_var=url_var, emulator_url=_EMULATOR_URLS.get(executor, ""),
                                 program=program)]
    return "\n".join(lines)


def _print_schema(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    import json

    import click

    from ..task import load_schema

    click.echo(json.dumps(load_schema(value), indent=2))
    ctx.exit(0)


def make_command(executor: str, program: str) -> click.Command:
    import click

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
    @click.option("--batch", is_flag=True,
                  help="JSONL in, JSONL out: one task spec per input line, one result line per spec, in input order.")
    @click.option("--concurrency", type=click.IntRange(min=1), default=None, metavar="N",
                  help="With --batch: at most N calls in flight at once (default 16).")
    @click.version_option(__version__, "--version", prog_name=program, message="%(prog)s %(version)s")
    def command(input_path: str | None, output_path: str | None, stream: bool, dry_run: bool,
                pretty: bool, batch: bool, concurrency: int | None) -> int:
        if not batch:
            if concurrency is not None:
                raise click.UsageError("--concurrency needs --batch")
            return run(RunOptions(executor=executor, program=program, input_path=input_path,
                                  output_path=output_path, stream=stream, dry_run=dry_run, pretty=pretty,
                                  started=PROCESS_START))
        for flag, given in (("--stream", stream), ("--pretty", pretty)):
            if given:
                raise click.UsageError(f"{flag} cannot be combined with --batch (one result object per line)")
        from ..batch import DEFAULT_CONCURRENCY, BatchOptions, run_batch

        return run_batch(BatchOptions(executor=executor, program=program, input_path=input_path,
                                      output_path=output_path, concurrency=concurrency or DEFAULT_CONCURRENCY,
                                      dry_run=dry_run))

    return command


def main(executor: str, program: str, argv: list[str] | None = None) -> None:
    """Console-script entry: exit with the runner's code. A bad flag is a configuration error
    (exit 2) and a bug of ours an internal error (exit 1); both still write one result object."""
    args = sys.argv[1:] if argv is None else argv
    try:
        if args:
            code: Any = _parse_and_run(executor, program, args)
        else:  # nothing to parse
            code = run(RunOptions(executor=executor, program=program, started=PROCESS_START))
    except Exception as exc:
        if os.environ.get("LLM_EXEC_RAISE"):
            raise
        import traceback

        traceback.print_exc(file=sys.stderr)
        code = _fail(executor, program, LlmError(f"internal error: {type(exc).__name__}: {exc}"))
    sys.exit(code if isinstance(code, int) else 0)


def _parse_and_run(executor: str, program: str, args: list[str]) -> Any:
    import click

    try:
        return make_command(executor, program).main(args=args, prog_name=program, standalone_mode=False)
    except click.ClickException as exc:
        field = getattr(getattr(exc, "param", None), "name", None)
        return _fail(executor, program, ConfigurationError(exc.format_message(), field=field, error_type="usage_error"))
    except click.exceptions.Abort:
        return _fail(executor, program, CancelledError("aborted"))


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
