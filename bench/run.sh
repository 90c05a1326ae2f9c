#!/usr/bin/env bash
# bench/run.sh - `make bench`: time coreheap on big real cores.
#
# Builds samples/programs/bigledger (the ledger sample at scale) with Go 1.26.6 (Swiss maps) and
# Go 1.23.9 (classic maps), runs it until about 1 and 4 GiB of live heap (and 16 GiB with
# BENCH_LARGE=1) in two shapes, `ledger` (small values, about 60 bytes per object) and `wide`
# (values five times larger, about 200 bytes per object), and keeps each core outside the
# repository, in $BENCH_DIR (default target/bench-cores), reused when present. Then, for every
# core and command (`maps`, `top`, `histogram`, and `diff` of the core against itself), it runs
# coreheap once on a cold page cache (when this user may drop caches), then untimed to warm it,
# then three times under /usr/bin/time -v with --timings, and prints a Markdown table of
# medians, also written to $BENCH_DIR/report.md. Each phase is also given as a multiple of the
# random-read floor (`examples/random_reads`: one random read per edge with the core's counts).
#
# Environment: BENCH_DIR, BENCH_LARGE=1, BENCH_SIZES="1 4" (GiB), BENCH_VERSIONS, BENCH_SHAPES,
# BENCH_RUNS, BENCH_WARMUP (untimed runs before them, default 1, and 2 for cores of 16 GiB and
# more), BENCH_COMMANDS="maps top histogram diff", BENCH_COLD=0 (no cold run), BENCH_REPORT
# (default $BENCH_DIR/report.md), BENCH_BIN (time this coreheap binary, e.g. an older build to
# compare with, instead of building the tree's).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SAMPLES=$ROOT/samples
GO_TOOLCHAINS=${GO_TOOLCHAINS:-$ROOT/target/go-toolchains}
BENCH_DIR=${BENCH_DIR:-$ROOT/target/bench-cores}
RUNS=${BENCH_RUNS:-3}
WARMUP=${BENCH_WARMUP:-}
VERSIONS=(${BENCH_VERSIONS:-1.26.6 1.23.9})
COMMANDS=(${BENCH_COMMANDS:-maps top histogram diff})
SHAPES=(${BENCH_SHAPES:-ledger wide})
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
cargo build --release --manifest-path "$ROOT/Cargo.toml" --example random_reads >&2
RANDOM_READS=$ROOT/target/release/examples/random_reads

# free_gib DIR: free space of the file system holding DIR, in GiB.
free_gib() { df -BG --output=avail "$1" | tail -1 | tr -dc 0-9; }

# words_of SHAPE: bigledger's LEDGER_WORDS for a bench core's shape.
words_of() {
	case $1 in
	ledger) echo 1 ;;
	wide) echo 5 ;;
	*) die "unknown shape $1 (BENCH_SHAPES: ledger, wide)" ;;
	esac
}

# make_core VERSION GIB SHAPE: the core of bigledger grown to GIB GiB, built once.
make_core() {
	local v=$1 gib=$2 shape=$3 dir=$BENCH_DIR/go$1/$3-${2}g words
	words=$(words_of "$shape")
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
	log "go$v: growing bigledger ($shape) to ${gib} GiB (this takes a while)"
	(
		cd "$dir"
		rm -f core
		ulimit -c unlimited
		GOTRACEBACK=crash LEDGER_GB=$gib LEDGER_WORDS=$words ./bigledger >/dev/null 2>traceback.txt || true
	)
	[[ -s $dir/core ]] || die "no core written in $dir (core_pattern: $(cat /proc/sys/kernel/core_pattern))"
	echo "$dir"
}

# run_args DIR CMD: coreheap's arguments for CMD on the core in DIR (`diff` compares the core
# with itself: two analyses of a core that size).
run_args() {
	local dir=$1 cmd=$2
	if [[ $cmd == diff ]]; then
		echo "diff $dir/core $dir/core --exe $dir/bigledger"
	else
		echo "$cmd $dir/core --exe $dir/bigledger"
	fi
}

# cold DIR CMD: "wall GB-read" of one run of CMD after dropping the page cache, or "- -" when
# this user may not drop it (or BENCH_COLD=0).
cold() {
	local dir=$1 cmd=$2
	if [[ ${BENCH_COLD:-1} == 0 || ! -w /proc/sys/vm/drop_caches ]]; then
		echo "- -"
		return
	fi
	sync
	echo 3 >/proc/sys/vm/drop_caches
	# shellcheck disable=SC2046
	/usr/bin/time -v -o "$dir/$cmd.cold.time" "$COREHEAP" $(run_args "$dir" "$cmd") --format json >/dev/null 2>&1 || true
	awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,t,":"); s=0; for(j=1;j<=n;j++) s=s*60+t[j]; w=s}
		/File system inputs/ {b=$2 * 512}
		END {printf "%.2f %.2f\n", w, b / 1e9}' "$dir/$cmd.cold.time"
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
		# shellcheck disable=SC2046
		"$COREHEAP" $(run_args "$dir" "$cmd") --format json >/dev/null 2>&1 || true
	done
	for ((i = 0; i < RUNS; i++)); do
		# shellcheck disable=SC2046
		/usr/bin/time -v -o "$dir/$cmd.time" "$COREHEAP" $(run_args "$dir" "$cmd") \
			--timings --format json >/dev/null 2>"$dir/$cmd.timings"
		walls+=("$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,t,":"); s=0; for(j=1;j<=n;j++) s=s*60+t[j]; print s}' "$dir/$cmd.time")")
		cpus+=("$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u+s}' "$dir/$cmd.time")")
		rss+=("$(awk -F': ' '/Maximum resident/ {print $2}' "$dir/$cmd.time")")
	done
	echo "$(median "${walls[@]}") $(median "${cpus[@]}") $(median "${rss[@]}")"
}

# The analysis phases, as --timings names them.
PHASES="spans roots pointers types maps graph dominators"

# phase NAME FILE FLOOR: seconds of one phase from a --timings log (both cores' for `diff`),
# and that as a multiple of FLOOR seconds.
phase() {
	awk -v p="$1" -v f="$3" '$1 == p {s += $2; n++} END {if (n) printf "%.2f (%.1f×)", s, s / f; else printf "-"}' "$2"
}

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

# outside_s FILE: seconds outside the analysis phases (opening the core, the report, writing
# it and freeing the tables).
outside_s() {
	awk -v phases="$PHASES" 'BEGIN {split(phases, l, " "); for (i in l) is[l[i]] = 1}
		$1 == "total" {t = $2} is[$1] && $3 == "s" {p += $2} END {printf "%.2f", t - p}' "$1"
}

# floor OBJECTS EDGES: seconds of one random read per edge from a table of a u32 per object.
floor_s() { "$RANDOM_READS" "$1" "$2" | sed -E 's/.*: ([0-9.]+) s.*/\1/'; }

report=${BENCH_REPORT:-$BENCH_DIR/report.md}
mkdir -p "$BENCH_DIR"
{
	echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -m), $(date -u +%Y-%m-%d)."
	echo
	echo "Phases in seconds, and as a multiple of the random-read floor (one random read per edge, \`examples/random_reads\`)."
	echo
	echo "| core | Go | core size | objects | heap B per object | edges | command | wall (median) | user+sys | cold wall | read cold | peak RSS | peak anonymous (beyond the core) | per object | spans | roots | pointers | types | maps | graph | dominators | outside the phases | random-read floor | wall × floor |"
	echo "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
} >"$report"
for v in "${VERSIONS[@]}"; do
	for gib in "${SIZES[@]}"; do
		for shape in "${SHAPES[@]}"; do
			dir=$(make_core "$v" "$gib" "$shape")
			size=$(stat -c %s "$dir/core")
			heap_bytes=$("$COREHEAP" heap-scan "$dir/core" --exe "$dir/bigledger" | awk '{print $1}')
			floor=
			for cmd in "${COMMANDS[@]}"; do
				read -r cold_wall cold_gb < <(cold "$dir" "$cmd")
				if [[ $cold_wall != - ]]; then cold_wall="$cold_wall s" cold_gb="$cold_gb GB"; fi
				read -r wall cpu rss < <(timed "$dir" "$cmd" "$gib")
				t=$dir/$cmd.timings
				objects=$(awk '$1 == "tables" {print $5; exit}' "$t")
				edges=$(awk '$1 == "tables" {print $8; exit}' "$t")
				[[ -n $floor ]] || floor=$(floor_s "$objects" "$edges")
				anon=$(peak_anon "$t")
				per_object=$(awk -v a="$anon" -v o="$objects" 'BEGIN {printf "%.1f B", a / o}')
				phases=()
				for p in $PHASES; do phases+=("$(phase "$p" "$t" "$floor")"); done
				printf '| %s GiB %s | %s | %.2f GB | %s | %.0f | %s | %s | %.2f s | %.2f s | %s | %s | %.2f GB | %.2f GB | %s |' \
					"$gib" "$shape" "$v" "$(awk -v s="$size" 'BEGIN {print s / 1e9}')" "$objects" \
					"$(awk -v h="$heap_bytes" -v o="$objects" 'BEGIN {print h / o}')" "$edges" "$cmd" \
					"$wall" "$cpu" "$cold_wall" "$cold_gb" \
					"$(awk -v r="$rss" 'BEGIN {print r * 1024 / 1e9}')" "$(awk -v a="$anon" 'BEGIN {print a / 1e9}')" \
					"$per_object" >>"$report"
				printf ' %s |' "${phases[@]}" >>"$report"
				printf ' %s | %.2f s | %.1f |\n' "$(outside_s "$t")" "$floor" \
					"$(awk -v w="$wall" -v f="$floor" 'BEGIN {print w / f}')" >>"$report"
			done
		done
	done
done
cat "$report"
