#!/usr/bin/env bash
# bench/run.sh - `make bench`: time coreheap on big real cores.
#
# Builds samples/programs/bigledger (the ledger sample at scale) with Go 1.26.6 (Swiss maps) and
# Go 1.23.9 (classic maps), runs it until about 1 and 4 GiB of live heap (and 16 GiB with
# BENCH_LARGE=1), and keeps each core outside the repository, in $BENCH_DIR (default
# target/bench-cores), reused when present. Then, for every core, it runs `coreheap maps` and
# `coreheap top` three times under /usr/bin/time -v with --timings, and one plain pass over the
# heap's bytes (`coreheap heap-scan`), and prints a Markdown table of medians, also written to
# $BENCH_DIR/report.md.
#
# Environment: BENCH_DIR, BENCH_LARGE=1, BENCH_SIZES="1 4" (GiB), BENCH_VERSIONS, BENCH_RUNS,
# BENCH_WARMUP (untimed runs before them, default 1, and 2 for cores of 16 GiB and more),
# BENCH_COMMANDS="maps top", BENCH_REPORT (default $BENCH_DIR/report.md), BENCH_BIN (time this
# coreheap binary, e.g. an older build to compare with, instead of building the tree's).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SAMPLES=$ROOT/samples
GO_TOOLCHAINS=${GO_TOOLCHAINS:-$ROOT/target/go-toolchains}
BENCH_DIR=${BENCH_DIR:-$ROOT/target/bench-cores}
RUNS=${BENCH_RUNS:-3}
WARMUP=${BENCH_WARMUP:-}
VERSIONS=(${BENCH_VERSIONS:-1.26.6 1.23.9})
COMMANDS=(${BENCH_COMMANDS:-maps top})
if [[ ${BENCH_LARGE:-0} == 1 ]]; then SIZES=(${BENCH_SIZES:-1 4 16}); else SIZES=(${BENCH_SIZES:-1 4}); fi

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }
source "$SAMPLES/toolchain.sh"

if [[ ! -x /usr/bin/time ]]; then
	log "installing GNU time"
	apt-get update -qq >/dev/null && apt-get install -y -qq time >/dev/null || die "cannot install time"
fi

if [[ -n ${BENCH_BIN:-} ]]; then
	COREHEAP=$BENCH_BIN
else
	cargo build --release --manifest-path "$ROOT/Cargo.toml" >&2
	COREHEAP=$ROOT/target/release/coreheap
fi

# free_gib DIR: free space of the file system holding DIR, in GiB.
free_gib() { df -BG --output=avail "$1" | tail -1 | tr -dc 0-9; }

# make_core VERSION GIB: the core of bigledger grown to GIB GiB, built once.
make_core() {
	local v=$1 gib=$2 dir=$BENCH_DIR/go$1/ledger-${2}g
	if [[ -s $dir/core && -x $dir/bigledger ]]; then
		echo "$dir"
		return
	fi
	mkdir -p "$dir"
	local need=$((gib * 3 / 2 + 2))
	(($(free_gib "$dir") >= need)) || die "need ${need} GiB free under $dir for a ${gib} GiB core"
	fetch_go "$v"
	(
		go_env "$v"
		cd "$SAMPLES/programs"
		"$GOROOT/bin/go" build -o "$dir/bigledger" ./bigledger
	)
	log "go$v: growing bigledger to ${gib} GiB (this takes a while)"
	(
		cd "$dir"
		rm -f core
		ulimit -c unlimited
		GOTRACEBACK=crash LEDGER_GB=$gib ./bigledger >/dev/null 2>traceback.txt || true
	)
	[[ -s $dir/core ]] || die "no core written in $dir (core_pattern: $(cat /proc/sys/kernel/core_pattern))"
	echo "$dir"
}

# median of the arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# timed DIR CMD GIB: runs coreheap CMD RUNS times; prints "wall user+sys maxrss_kb" medians
# and leaves the last run's --timings in $DIR/CMD.timings.
timed() {
	local dir=$1 cmd=$2 gib=$3 walls=() cpus=() rss=()
	# Warm-up runs, not timed: the targets are for a warm page cache, and the first run after
	# another core was read finds this one evicted. A core that does not fit in memory beside
	# the tables (16 GiB here) can still miss pages on the run after a cold one.
	local warmup=${WARMUP:-$((gib >= 16 ? 2 : 1))}
	for ((i = 0; i < warmup; i++)); do
		"$COREHEAP" "$cmd" "$dir/core" --exe "$dir/bigledger" --format json >/dev/null 2>&1 || true
	done
	for ((i = 0; i < RUNS; i++)); do
		/usr/bin/time -v -o "$dir/$cmd.time" "$COREHEAP" "$cmd" "$dir/core" --exe "$dir/bigledger" \
			--timings --format json >/dev/null 2>"$dir/$cmd.timings"
		walls+=("$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,t,":"); s=0; for(j=1;j<=n;j++) s=s*60+t[j]; print s}' "$dir/$cmd.time")")
		cpus+=("$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u+s}' "$dir/$cmd.time")")
		rss+=("$(awk -F': ' '/Maximum resident/ {print $2}' "$dir/$cmd.time")")
	done
	echo "$(median "${walls[@]}") $(median "${cpus[@]}") $(median "${rss[@]}")"
}

# phase NAME FILE: seconds of one phase from a --timings log.
phase() { awk -v p="$1" '$1 == p {print $2}' "$2"; }

# peak_anon FILE: the most anonymous memory coreheap held (beyond the mapped core and
# executable), in bytes: the peak sampled every 10 ms over the whole command, or a phase's end
# if that was higher.
peak_anon() {
	awk 'function bytes(v, u) {
		return v * ((u == "KiB") ? 1024 : (u == "MiB") ? 1048576 : (u == "GiB") ? 1073741824 : 1)
	}
	$1 == "peak" && $2 == "anonymous" { b = bytes($3, $4); if (b > m) m = b; next }
	/anonymous/ { b = bytes($(NF-1), $NF); if (b > m) m = b }
	END {printf "%.0f", m}' "$1"
}

# report_s FILE: seconds outside the analysis phases (opening the core and the report itself).
report_s() {
	awk '$1 == "total" {t = $2} / s/ && $1 != "total" && $1 != "open" {p += $2} END {printf "%.2f", t - p}' "$1"
}

report=${BENCH_REPORT:-$BENCH_DIR/report.md}
mkdir -p "$BENCH_DIR"
{
	echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -m), $(date -u +%Y-%m-%d)."
	echo
	echo "| core | Go | core size | objects | edges | command | wall (median) | user+sys | peak RSS | peak anonymous (beyond the core) | per object | spans | roots | pointers | types | maps | graph | dominators | report | heap MB/s | plain pass | × plain pass |"
	echo "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
} >"$report"
for v in "${VERSIONS[@]}"; do
	for gib in "${SIZES[@]}"; do
		dir=$(make_core "$v" "$gib")
		size=$(stat -c %s "$dir/core")
		# The plain pass, warm: one run to load the page cache, then the best of three.
		"$COREHEAP" heap-scan "$dir/core" --exe "$dir/bigledger" >/dev/null
		scan_s=
		for ((i = 0; i < 3; i++)); do
			scan=$("$COREHEAP" heap-scan "$dir/core" --exe "$dir/bigledger")
			s=$(awk '{print $4}' <<<"$scan")
			if [[ -z $scan_s ]] || awk -v a="$s" -v b="$scan_s" 'BEGIN {exit !(a < b)}'; then scan_s=$s; fi
		done
		heap_bytes=${scan%% bytes*}
		for cmd in "${COMMANDS[@]}"; do
			read -r wall cpu rss < <(timed "$dir" "$cmd" "$gib")
			t=$dir/$cmd.timings
			objects=$(awk '$1 == "tables" {print $5}' "$t")
			edges=$(awk '$1 == "tables" {print $8}' "$t")
			anon=$(peak_anon "$t")
			per_object=$(awk -v a="$anon" -v o="$objects" 'BEGIN {printf "%.1f B", a / o}')
			mbps=$(awk -v b="$heap_bytes" -v w="$wall" 'BEGIN {printf "%.0f", b / w / 1e6}')
			ratio=$(awk -v w="$wall" -v s="$scan_s" 'BEGIN {printf "%.1f", w / s}')
			printf '| %s GiB | %s | %.2f GB | %s | %s | %s | %.2f s | %.2f s | %.2f GB | %.2f GB | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f s | %s |\n' \
				"$gib" "$v" "$(awk -v s="$size" 'BEGIN {print s / 1e9}')" "$objects" "$edges" "$cmd" \
				"$wall" "$cpu" "$(awk -v r="$rss" 'BEGIN {print r * 1024 / 1e9}')" "$(awk -v a="$anon" 'BEGIN {print a / 1e9}')" "$per_object" \
				"$(phase spans "$t")" "$(phase roots "$t")" "$(phase pointers "$t")" "$(phase types "$t")" "$(phase maps "$t")" \
				"$(phase graph "$t")" "$(phase dominators "$t")" "$(report_s "$t")" "$mbps" "$scan_s" "$ratio" >>"$report"
		done
	done
done
cat "$report"
