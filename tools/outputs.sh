#!/usr/bin/env bash
# Writes every report of every sample core to DIR, for checking that a change leaves the
# output byte-identical: tools/outputs.sh BIN DIR, then `diff -r` two such directories.
set -u
bin=$1 out=$2
mkdir -p "$out"
for core in samples/cores/*/*/core.zst; do
  name=$(echo "$core" | cut -d/ -f3,4 | tr / _)
  run() { tag=$1; shift; "$bin" "$@" >"$out/$name.$tag" 2>&1; echo "exit $?" >>"$out/$name.$tag"; }
  run info info "$core"
  run info.json info "$core" --format json
  run maps maps "$core" --width 140
  run maps.json maps "$core" --format json --entries 3 --all
  run maps.md maps "$core" --format markdown --redact
  # Redacted names are keyed hashes, new each run: compare their places, not their digits.
  sed -i -E 's/#[0-9a-f]{6}/#hash/g' "$out/$name.maps.md"
  run top top "$core" --width 140
  run top.json top "$core" --format json
  run hist.json histogram "$core" --format json
done
