#!/usr/bin/env bash
# Build the README's Go example (the ```go block) and run it against the bundled emulator: once with a
# key (prints the answer, exit 0) and once without (exit 2 with the error). Needs Go (e.g. Debian's
# golang-go) and the project's .venv; not part of `make test`, which needs no Go toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'kill "${emulator:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
awk '/^```go$/{on=1; next} /^```$/{on=0} on' README.md > "$work/main.go"
(cd "$work" && go mod init example.com/readme >/dev/null 2>&1 && test -z "$(gofmt -l .)" && go vet . && go build -o example .)
port=8791
.venv/bin/llm-exec-emulator --port "$port" >/dev/null 2>&1 & emulator=$!
sleep 1
export PATH="$PWD/.venv/bin:$PATH" ANTHROPIC_BASE_URL="http://127.0.0.1:$port"
ANTHROPIC_API_KEY=test "$work/example"
set +e
env -u ANTHROPIC_API_KEY "$work/example" 2>/dev/null
code=$?
set -e
test "$code" -eq 2 && echo "go example: ok (exit $code without a key)"
