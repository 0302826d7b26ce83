#!/usr/bin/env bash
# A short run of every cargo-fuzz target (make test calls it): replays the
# committed corpus, then fuzzes for FUZZ_SECONDS (default 10) each. New
# inputs go to a scratch directory, never into the repository's corpora.
# Long runs: see the command at the top of each fuzz/fuzz_targets/*.rs.
#
# Built without AddressSanitizer (-s none): the fuzzed crates, dataplane and
# control, forbid unsafe code, so what a target can find is a panic, an
# overflow (debug assertions are on), a hang or runaway memory, which
# libFuzzer catches by itself; ASan would add a minute of build to every
# `make test` and find nothing more. Long runs may add `-s address`.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-10}
# cargo-fuzz wants nightly-only flags (sanitizers); the machine's stable
# toolchain accepts them with RUSTC_BOOTSTRAP=1, so no second toolchain is needed.
export RUSTC_BOOTSTRAP=1
# The sys crate's SIMD paths (CRC32C, signature compares) need SSE4.2.
export RUSTFLAGS="${RUSTFLAGS:-} -C target-cpu=x86-64-v2"
targets=$(sed -n 's/^name = "\(.*\)"/\1/p' fuzz/Cargo.toml | grep -v '^flowgate-fuzz$')
echo "fuzz-smoke: building $(echo $targets | wc -w) targets (cargo fuzz build -O -s none)"
cargo fuzz build -O -s none >/tmp/flowgate-fuzz-build.log 2>&1 || { tail -30 /tmp/flowgate-fuzz-build.log >&2; exit 1; }
scratch=$(mktemp -d /tmp/flowgate-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
for t in $targets; do
  mkdir -p "$scratch/$t"
  echo "fuzz-smoke: $t: corpus fuzz/corpus/$t ($(ls fuzz/corpus/$t | wc -l) inputs), then ${secs}s of fuzzing"
  if ! cargo fuzz run -O -s none "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
       -max_total_time="$secs" -rss_limit_mb=4096 >"$scratch/$t.log" 2>&1; then
    tail -40 "$scratch/$t.log" >&2
    echo "fuzz-smoke: $t FAILED (crash input under fuzz/artifacts/$t/)" >&2
    exit 1
  fi
  grep -E "^Done [0-9]+ runs" "$scratch/$t.log" | sed "s/^/fuzz-smoke: $t: /" || true
done
echo "fuzz-smoke: every target ran clean"
