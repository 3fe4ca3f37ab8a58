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
from ..errors import LlmError
from ..providers.registry import get_provider
from ..result import Output, build_result
from ..runner import PROCESS_START, RunOptions, run

if TYPE_CHECKING:
    import click

EXAMPLE = """\b
Example (runs against the bundled emulator, no key needed):
  llm-exec-emulator --port 8765 &
  export {settings}
  echo '{{"task_id": "t1", "prompt": "Say hello"}}' | {program}
"""

EMULATOR_ROOT = "http://127.0.0.1:8765"


SPEC_NAMED_HELP = """Run one LLM task with the provider it names and print one result JSON on stdout.

The provider comes from --provider NAME, else $LLM_EXEC_PROVIDER, else the task's `provider` field
(`llm-exec providers` lists the installed ones, plugins included). Every other flag is the
executors' own (see `llm-exec run --provider NAME --help`). Exit codes: 0 success, 1 execution error,
2 configuration error (no or unknown provider included), 3 task-spec error.

\b
Examples:
  echo '{"prompt": "Say hello"}' | llm-exec run --provider gpt
  echo '{"provider": "claude", "prompt": "Say hello"}' | llm-exec run --stream
  LLM_EXEC_PROVIDER=gemini llm-exec run --batch < tasks.jsonl
"""


def _help_text(executor: str | None, program: str) -> str:
    if executor is None:
        return SPEC_NAMED_HELP
    provider = get_provider(executor)
    settings = [f"{name}=test" for name in provider.key_env_vars[:1]]
    settings += [f"{name}={EMULATOR_ROOT}{provider.emulator_path}" for name in provider.base_url_env_vars[:1]]
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
    lines += ["", EXAMPLE.format(settings=" ".join(settings), program=program)]
    return "\n".join(lines)


def make_command(executor: str | None, program: str, started: float = PROCESS_START) -> click.Command:
    import click

    from .options import print_schema

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
    @click.option("--schema", type=click.Choice(["task", "result"]), callback=print_schema,
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
                                  started=started))
        for flag, given in (("--stream", stream), ("--pretty", pretty)):
            if given:
                raise click.UsageError(f"{flag} cannot be combined with --batch (one result object per line)")
        if executor is None:
            raise click.UsageError("--batch needs the provider from --provider NAME or LLM_EXEC_PROVIDER")
        from ..batch import DEFAULT_CONCURRENCY, BatchOptions, run_batch

        return run_batch(BatchOptions(executor=executor, program=program, input_path=input_path,
                                      output_path=output_path, concurrency=concurrency or DEFAULT_CONCURRENCY,
                                      dry_run=dry_run))

    return command


def main(executor: str | None, program: str, argv: list[str] | None = None, *,
         started: float = PROCESS_START) -> None:
    """Console-script entry: exit with the runner's code. `started` is when the deadline starts
    counting: this process's start, or (the warm daemon's child) the caller's. A bad flag is a
    configuration error (exit 2) and a bug of ours an internal error (exit 1); both still write one
    result object."""
    from ..edge import guarded

    args = sys.argv[1:] if argv is None else argv
    if os.environ.get(f"_{program.replace('-', '_').upper()}_COMPLETE"):
        # A shell-completion request (`llm-exec completion`): click's own protocol answers it, and exits.
        make_command(executor, program, started).main(args=args, prog_name=program)

    def fail(error: LlmError) -> int:
        return _fail(executor, program, error, started)

    def log(message: str) -> None:
        sys.stderr.write(Secrets.from_env().redact(f"{program}: {message}\n"))

    if args:
        code: Any = guarded(lambda: make_command(executor, program, started).main(
            args=args, prog_name=program, standalone_mode=False), fail, log, click=True)
    else:  # nothing to parse: no click
        code = guarded(lambda: run(RunOptions(executor=executor, program=program, started=started)), fail, log)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(executor: str | None, program: str, error: LlmError, started: float) -> int:
    """The result object for a failure outside the runner (flag parsing, start-up)."""
    secrets = Secrets.from_env()
    sys.stderr.write(secrets.redact(f"{program}: {error.type}: {error.message}\n"))
    try:
        provider = get_provider(executor).name if executor else None
    except Exception:  # the failure may be this very lookup
        provider = executor
    Output(None, secrets).result(build_result(
        provider=provider, task=None, model=None, elapsed=time.monotonic() - started,
        attempts=0, error=error))
    return error.exit_code
