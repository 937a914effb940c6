#!/bin/sh
# Builds every fuzz target with libFuzzer coverage instrumentation on a STABLE toolchain, seeds
# the corpora from the published vectors, and runs each target for SECONDS seconds in sequence.
# Exits non-zero if any target crashes (reproducer in fuzz/artifacts/<target>/, log in
# fuzz/logs/<target>.log).
#
# Usage: fuzz/run-all.sh [SECONDS] [TARGET...]      (default: 60 seconds, every target)
# Extra libFuzzer flags can be passed in FUZZ_FLAGS, e.g. FUZZ_FLAGS="-jobs=2 -workers=2".
set -eu
secs=${1:-60}
[ $# -gt 0 ] && shift
cd "$(dirname "$0")"
triple=$(rustc -vV | sed -n 's/^host: //p')
# What `cargo fuzz build -s none` does, minus its nightly-only flags. `--target` keeps these flags
# away from build scripts and proc macros (which must not be instrumented).
RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
RUSTFLAGS="$RUSTFLAGS -Cllvm-args=-sanitizer-coverage-inline-8bit-counters"
RUSTFLAGS="$RUSTFLAGS -Cllvm-args=-sanitizer-coverage-pc-table"
RUSTFLAGS="$RUSTFLAGS -Cllvm-args=-sanitizer-coverage-trace-compares"
RUSTFLAGS="$RUSTFLAGS -Cdebug-assertions -Coverflow-checks"
export RUSTFLAGS
cargo build --release --locked --bins --target "$triple"
./seed_corpus.sh
targets=${*:-$(sed -n '/^\[\[bin\]\]/{n;s/^name = "\(.*\)"/\1/p;}' Cargo.toml)}
mkdir -p logs
status=0
for t in $targets; do
    mkdir -p "corpus/$t" "artifacts/$t"
    if "target/$triple/release/$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="artifacts/$t/" ${FUZZ_FLAGS:-} "corpus/$t" \
        >"logs/$t.log" 2>&1; then
        result=ok
    else
        result=CRASH
        status=1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "logs/$t.log" | tail -n 1)
    printf '%-18s %-6s %ss %s execs, %s, corpus %s files\n' "$t" "$result" "$secs" \
        "${execs:-?}" "${cov:-cov: ?}" "$(ls "corpus/$t" | wc -l)"
done
exit $status
