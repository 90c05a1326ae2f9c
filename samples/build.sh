#!/usr/bin/env bash
# samples/build.sh - build the Go sample programs with every supported Go
# toolchain, run them until they crash, and store core + binary + truth under
# samples/cores/go<version>[-variant]/<program>/.
#
# Usage: samples/build.sh [VERSION...] [PROGRAM...] [VARIANT...]
#   VERSION  e.g. 1.26.6         (default: all of ALL_VERSIONS)
#   PROGRAM  tiny | ledger | zoo | services | panicky | growth (default: all)
#   VARIANT  plain | pie | noswissmap | arm64 (default: all)
# Examples:
#   samples/build.sh 1.26.6 tiny          # go1.26.6/tiny, go1.26.6-pie/tiny, go1.26.6-arm64/tiny
#   samples/build.sh 1.26.6 tiny plain    # only go1.26.6/tiny
#   samples/build.sh arm64                # all arm64 samples (go1.23.9-arm64, go1.26.6-arm64)
#   samples/build.sh services             # services with every version and variant that has it
#
# Environment:
#   GO_TOOLCHAINS  toolchain cache (default: <repo>/target/go-toolchains)
#   SAMPLES_WORK   scratch dir where binaries are built and run
#                  (default: /tmp/coreheap-samples; the core's NT_FILE note
#                  records the binary path below it)
#   ZSTD_LEVEL     zstd flags (default: "--ultra -22 --long=27")
set -euo pipefail

SAMPLES=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$SAMPLES")
GO_TOOLCHAINS=${GO_TOOLCHAINS:-$ROOT/target/go-toolchains}
WORK=${SAMPLES_WORK:-/tmp/coreheap-samples}
ZSTD_LEVEL=${ZSTD_LEVEL:---ultra -22 --long=27}

ALL_VERSIONS=(1.21.13 1.22.10 1.23.9 1.24.11 1.25.5 1.26.6 1.27.3)
ALL_PROGRAMS=(tiny ledger zoo services)
ALL_VARIANTS=(plain pie noswissmap arm64)

# Per-sample limits (bytes): core.zst + <prog>.zst, and the whole samples/ tree.
MAX_SAMPLE=$((4 * 1000 * 1000))
MAX_TOTAL=$((80 * 1000 * 1000))

log() { printf '[samples] %s\n' "$*" >&2; }
die() { printf '[samples] ERROR: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------ arguments
want_versions=() want_programs=() want_variants=()
for a in "$@"; do
	case "$a" in
	[0-9]*.*) want_versions+=("$a") ;;
	tiny | ledger | zoo | services | panicky | growth) want_programs+=("$a") ;;
	plain | pie | noswissmap | arm64) want_variants+=("$a") ;;
	-h | --help) sed -n '2,23p' "${BASH_SOURCE[0]}"; exit 0 ;;
	*) die "unknown argument '$a' (see --help)" ;;
	esac
done
((${#want_versions[@]})) || want_versions=("${ALL_VERSIONS[@]}")
((${#want_programs[@]})) || want_programs=("${ALL_PROGRAMS[@]}" panicky growth)
((${#want_variants[@]})) || want_variants=("${ALL_VARIANTS[@]}")
for v in "${want_versions[@]}"; do
	[[ " ${ALL_VERSIONS[*]} " == *" $v "* ]] || die "unsupported Go version $v (supported: ${ALL_VERSIONS[*]})"
done
has() { local x=$1; shift; [[ " $* " == *" $x "* ]]; }

# The sample matrix: "version variant program".
matrix=()
for v in "${ALL_VERSIONS[@]}"; do
	for p in "${ALL_PROGRAMS[@]}"; do
		matrix+=("$v plain $p")
	done
done
for p in tiny ledger zoo; do matrix+=("1.26.6 pie $p"); done # not services
for p in "${ALL_PROGRAMS[@]}"; do matrix+=("1.24.11 noswissmap $p"); done
for p in tiny ledger services; do matrix+=("1.23.9 arm64 $p"); done # classic maps under qemu
for p in tiny ledger services; do matrix+=("1.26.6 arm64 $p"); done # Swiss maps under qemu
# panicky: a real panic (nil dereference in a goroutine), no truth.json; every plain release, and arm64 once.
for v in "${ALL_VERSIONS[@]}"; do matrix+=("$v plain panicky"); done
matrix+=("1.26.6 arm64 panicky")
# growth: the before/after pair for `coreheap diff` (growth-1 crashed, growth-2 dumped alive by gcore).
matrix+=("1.26.6 plain growth")

selected=()
for m in "${matrix[@]}"; do
	read -r v var p <<<"$m"
	has "$v" "${want_versions[@]}" && has "$var" "${want_variants[@]}" && has "$p" "${want_programs[@]}" &&
		selected+=("$m")
done
((${#selected[@]})) || die "nothing selected"

# ------------------------------------------------------------------ tools
command -v python3 >/dev/null || die "python3 is required"
command -v zstd >/dev/null || die "zstd is required (apt-get install zstd)"
command -v readelf >/dev/null || die "readelf is required (apt-get install binutils)"

need_qemu=0
for m in "${selected[@]}"; do [[ $m == *" arm64 "* ]] && need_qemu=1; done
if ((need_qemu)) && ! command -v qemu-aarch64 >/dev/null; then
	log "installing qemu-user (for the arm64 samples)"
	[[ $(id -u) == 0 ]] || die "qemu-aarch64 missing; run: sudo apt-get install qemu-user"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user >/dev/null
	command -v qemu-aarch64 >/dev/null || die "qemu-aarch64 still missing after installing qemu-user"
fi

# Toolchains: fetch_go VERSION and go_env VERSION.
source "$SAMPLES/toolchain.sh"

# ------------------------------------------------------------------ checks

# check_core CORE RUNNER: ELF core sanity (notes, not truncated).
check_core() {
	local core=$1 runner=$2 notes
	notes=$(readelf -n "$core")
	grep -q NT_PRSTATUS <<<"$notes" || die "$core: no NT_PRSTATUS note"
	if [[ $runner == kernel ]]; then
		grep -q NT_FILE <<<"$notes" || die "$core: no NT_FILE note"
	fi
	python3 - "$core" <<'EOF'
import struct, sys, os
path = sys.argv[1]
size = os.path.getsize(path)
with open(path, "rb") as f:
    ident = f.read(64)
    assert ident[:4] == b"\x7fELF" and ident[4] == 2, "not an ELF64 file"
    e_type, = struct.unpack_from("<H", ident, 16)
    assert e_type == 4, "not ET_CORE"
    phoff, = struct.unpack_from("<Q", ident, 32)
    phentsize, phnum = struct.unpack_from("<HH", ident, 54)
    f.seek(phoff)
    end = 0
    loads = 0
    for i in range(phnum):
        ph = f.read(phentsize)
        p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz = struct.unpack_from("<IIQQQQQ", ph)
        end = max(end, p_offset + p_filesz)
        loads += p_type == 1
    if end > size:
        sys.exit("%s: truncated core: program headers need %d bytes, file has %d" % (path, end, size))
    print("core ok: %d bytes, %d PT_LOAD segments" % (size, loads))
EOF
}

# ------------------------------------------------------------------ build + run

build_one() {
	local v=$1 var=$2 p=$3
	local suffix="" goarch=amd64 runner=kernel buildmode=exe experiment=""
	case "$var" in
	plain) ;;
	pie) suffix=-pie buildmode=pie ;;
	noswissmap) suffix=-noswissmap experiment=noswissmap ;;
	arm64) suffix=-arm64 goarch=arm64 runner=qemu-aarch64 ;;
	esac
	local name=go$v$suffix
	local run=$WORK/$name/$p
	local out=$SAMPLES/cores/$name/$p
	log "== $name/$p"

	fetch_go "$v"
	go_env "$v"
	export GOARCH=$goarch
	[[ -n $experiment ]] && export GOEXPERIMENT=$experiment

	rm -rf "$run"
	mkdir -p "$run"
	# One module (samples/programs/go.mod, "module samples"): the programs are
	# its main packages ./tiny, ./ledger, ./zoo, ./services, sharing samples/internal/truth.
	# Keep DWARF: no -s / -w. -trimpath and -buildvcs=false make the binary
	# independent of where the repository is checked out and of its git state.
	(cd "$SAMPLES/programs" &&
		"$GOROOT/bin/go" build -trimpath -buildvcs=false -buildmode=$buildmode -o "$run/$p" "./$p")
	if [[ $p == growth ]]; then
		growth_pair "$run" "$out" "$name" "$v" "$var" "$goarch" "$buildmode" "$experiment"
		return
	fi

	# Run it. It writes truth.json + memstats.json and then crashes (tgkill
	# SIGABRT to itself -> the runtime's handler prints every goroutine,
	# GOTRACEBACK=crash -> dies of SIGABRT -> core). Exit status 3
	# means the program's own exactness checks failed (e.g. the runtime
	# allocated something of its own inside a measurement window); retry then.
	local rc attempt
	for attempt in 1 2 3 4 5; do
		rm -f "$run"/core "$run"/qemu_*.core "$run"/truth.json "$run"/memstats.json
		rc=0
		# (the outer braces keep bash's "Aborted (core dumped)" job message quiet)
		{ (
			cd "$run"
			ulimit -c unlimited
			export GOTRACEBACK=crash TRUTH=$run/truth.json MEMSTATS=$run/memstats.json
			unset GOGC GOMEMLIMIT GODEBUG GOMAXPROCS || true
			if [[ $runner == kernel ]]; then
				exec "./$p" >stdout.txt 2>traceback.txt
			else
				exec qemu-aarch64 "./$p" >stdout.txt 2>traceback.txt
			fi
		) || rc=$?; } 2>/dev/null
		((rc == 3)) || break
		log "   attempt $attempt: $(grep 'TRUTH VERIFICATION FAILED' "$run/traceback.txt" || true)"
	done
	if ((rc == 3)); then
		cat "$run/traceback.txt" >&2
		die "$name/$p: the program's own truth verification failed 5 times"
	fi
	if [[ $p == panicky ]]; then
		# panicky must panic on its nil dereference (SIGSEGV at address 0) and,
		# GOTRACEBACK=crash, die of the runtime's SIGABRT (128 + 6).
		{ grep -q '^panic: runtime error: invalid memory address or nil pointer dereference' "$run/traceback.txt" &&
			grep -q '^\[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 ' "$run/traceback.txt" && ((rc == 134)); } ||
			{ tail -20 "$run/traceback.txt" >&2; die "$name/$p: did not panic on its nil dereference (rc=$rc)"; }
	else
		# The crash must be the program's own SIGABRT, taken by the thread running
		# goroutine 1 in samples/internal/truth.crash, and the process must have
		# died of it (128 + 6).
		{ grep -q '^SIGABRT: abort' "$run/traceback.txt" &&
			grep -q '^samples/internal/truth\.crash(' "$run/traceback.txt" && ((rc == 134)); } ||
			{ tail -20 "$run/traceback.txt" >&2; die "$name/$p: did not die of its own SIGABRT in truth.crash (rc=$rc)"; }
		[[ -s $run/truth.json && -s $run/memstats.json ]] || die "$name/$p: truth.json/memstats.json missing"
		grep -q '"mallocs_after_write": 0,' "$run/memstats.json" || log "WARNING: $name/$p: allocation after the MemStats snapshot"
	fi

	local core=$run/core
	if [[ $runner != kernel ]]; then
		# qemu writes qemu_<prog>_<date>_<pid>.core into the cwd.
		local q
		q=$(ls -t "$run"/qemu_"$p"_*.core 2>/dev/null | head -1 || true)
		[[ -n $q ]] || die "$name/$p: qemu wrote no core (rc=$rc)"
		mv "$q" "$core"
	fi
	[[ -f $core ]] || die "$name/$p: no core file (rc=$rc); check 'ulimit -c' and /proc/sys/kernel/core_pattern (must be 'core')"
	check_core "$core" "$runner" >&2

	store_one "$core" "$out" "$run/$p" "$name" "$v" "$var" "$goarch" "$buildmode" "$experiment" "$runner" "$rc"
}

# growth_pair RUN OUT NAME VERSION VARIANT GOARCH BUILDMODE EXPERIMENT: the pair `coreheap diff`
# is tested on. Stage 1 crashes as the other programs do (kernel core, OUT-1); stage 2 is dumped
# alive with gdb's gcore and then killed (OUT-2), as a responder dumps a service before the OOM
# kill. Both stages run the same binary, stored once (OUT-2's is a link to OUT-1's).
growth_pair() {
	local run=$1 out=$2 name=$3 v=$4 var=$5 goarch=$6 buildmode=$7 experiment=$8 rc pid
	command -v gcore >/dev/null || die "gcore is required for the growth samples (apt-get install gdb)"
	rm -f "$run"/core "$run"/truth.json "$run"/memstats.json
	rc=0
	{ (
		cd "$run"
		ulimit -c unlimited
		export GOTRACEBACK=crash TRUTH=$run/truth.json MEMSTATS=$run/memstats.json STAGE=1
		unset GOGC GOMEMLIMIT GODEBUG GOMAXPROCS || true
		exec ./growth >stdout.txt 2>traceback.txt
	) || rc=$?; } 2>/dev/null
	grep -q '^samples/internal/truth\.crash(' "$run/traceback.txt" && ((rc == 134)) ||
		{ tail -20 "$run/traceback.txt" >&2; die "$name/growth stage 1: did not die of its own SIGABRT (rc=$rc)"; }
	check_core "$run/core" kernel >&2
	store_one "$run/core" "$out-1" "$run/growth" "$name" "$v" "$var" "$goarch" "$buildmode" "$experiment" kernel "$rc"

	rm -f "$run"/truth.json "$run"/memstats.json "$run"/ready "$run"/traceback.txt
	(
		cd "$run"
		export TRUTH=$run/truth.json MEMSTATS=$run/memstats.json STAGE=2 HOLD=1 READY=$run/ready
		unset GOGC GOMEMLIMIT GODEBUG GOMAXPROCS || true
		exec ./growth >stdout.txt 2>stderr.txt
	) &
	pid=$!
	for _ in $(seq 600); do [[ -s $run/ready ]] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	[[ -s $run/ready ]] || { kill -9 "$pid" 2>/dev/null; cat "$run/stderr.txt" >&2; die "$name/growth stage 2 never got ready"; }
	gcore -o "$run/gcore" "$pid" >"$run/gcore.log" 2>&1 || { cat "$run/gcore.log" >&2; die "gcore failed"; }
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true
	mv "$run/gcore.$pid" "$run/core"
	check_core "$run/core" kernel >&2
	store_one "$run/core" "$out-2" "$run/growth" "$name" "$v" "$var" "$goarch" "$buildmode" "$experiment" gcore 137
	ln -sf ../growth-1/growth.zst "$out-2/growth.zst"
}

# store_one CORE OUT BINARY NAME VERSION VARIANT GOARCH BUILDMODE EXPERIMENT DUMPED_BY RC:
# compress core and binary into OUT with the run's traceback, truth, memstats and meta.json,
# then remove CORE.
store_one() {
	local core=$1 out=$2 binary=$3 name=$4 v=$5 var=$6 goarch=$7 buildmode=$8 experiment=$9 runner=${10} rc=${11}
	local run p
	run=$(dirname "$binary") p=$(basename "$binary")
	# Store.
	rm -rf "$out"
	mkdir -p "$out"
	# shellcheck disable=SC2086
	zstd -q $ZSTD_LEVEL -T2 -f "$core" -o "$out/core.zst"
	# shellcheck disable=SC2086
	zstd -q $ZSTD_LEVEL -T2 -f "$binary" -o "$out/$p.zst"
	[[ ! -s $run/traceback.txt ]] || cp "$run/traceback.txt" "$out/"
	[[ $p == panicky ]] || cp "$run/truth.json" "$run/memstats.json" "$out/"
	chmod 644 "$out"/*
	python3 - "$out/meta.json" "$name" "$v" "$var" "$goarch" "$buildmode" "$experiment" "$runner" "$binary" "$core" "$rc" <<'EOF'
import hashlib, json, os, sys
out, name, v, var, goarch, buildmode, experiment, runner, binary, core, rc = sys.argv[1:]
def sha(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
meta = {
    "sample": name + "/" + os.path.basename(binary),
    "go_version": "go" + v,
    "variant": var,
    "goos": "linux",
    "goarch": goarch,
    "buildmode": buildmode,
    "goexperiment": experiment,
    "build_flags": "-trimpath -buildvcs=false -buildmode=" + buildmode + " (CGO_ENABLED=0)",
    "dumped_by": runner,
    "exit_status": int(rc),
    "binary_path": binary,
    "binary_size": os.path.getsize(binary),
    "binary_sha256": sha(binary),
    "core_size": os.path.getsize(core),
    "core_sha256": sha(core),
}
with open(out, "w") as f:
    json.dump(meta, f, indent=2)
    f.write("\n")
EOF
	chmod 644 "$out/meta.json"
	local sz
	sz=$(($(stat -c %s "$out/core.zst") + $(stat -c %s "$out/$p.zst")))
	log "   core $(stat -c %s "$core") -> $(stat -c %s "$out/core.zst"), binary $(stat -c %s "$binary") -> $(stat -c %s "$out/$p.zst")"
	((sz < MAX_SAMPLE)) || die "$name/$p: core.zst + $p.zst = $sz bytes, limit $MAX_SAMPLE"
	rm -f "$core"
}

for m in "${selected[@]}"; do
	read -r v var p <<<"$m"
	build_one "$v" "$var" "$p"
done

total=$(du -sb "$SAMPLES" | cut -f1)
log "samples/ total: $total bytes"
((total < MAX_TOTAL)) || die "samples/ is $total bytes, limit $MAX_TOTAL"
