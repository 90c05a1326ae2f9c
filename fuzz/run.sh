#!/usr/bin/env bash
# Runs every fuzz target (or those in FUZZ_TARGETS) for FUZZ_SECONDS each, one after the
# other, on the seed corpus made from the samples. Needs the nightly toolchain and cargo-fuzz
# (installed here when missing). Findings land in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-core_parse exe_parse decompress map_decode analysis}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
[ -d seeds ] || cargo run --release -q --example seeds -- seeds
for t in $targets; do
    case $t in
        core_parse | decompress) max_len=131072 ;;
        *) max_len=4096 ;;
    esac
    mkdir -p "corpus/$t"
    # A finding is a panic (overflow checks on), an input running over 10 s, or one
    # allocation over 4 GiB. In fork mode the run goes on after a finding, for the whole time,
    # and leaves each finding in artifacts/<target>/.
    cargo +nightly fuzz run --debug-assertions --sanitizer none "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -malloc_limit_mb=4096 \
        -max_len="$max_len" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
        -print_final_stats=1
done
# The targets' scratch copies of the samples live in /dev/shm, one directory per process.
rm -rf /dev/shm/coreheap-fuzz-*
echo "findings:"
ls -l artifacts/*/ 2>/dev/null || echo "none"
