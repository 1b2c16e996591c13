#!/usr/bin/env bash
# Issue 14's speed table, every row a ratio against a reference measured side by side in the
# same run (the reference and Cairn interleaved, medians of paired ratios):
#
#   row                     Cairn                               reference
#   mining, 1 thread        the `pow` bench's kernel            cpuminer-opt (built from source
#                                                               by pow_vs_cpuminer.sh, cached)
#   validation, 1/2 threads check_body + check_state            raw libsecp256k1 verification
#   mempool admission       Mempool::admit, one thread          raw verification, one thread
#   compact block relay     compact blocks to 8 nodes           whole blocks to the same nodes
#   sync                    a fresh node syncing 60 blocks of   in-memory validation of the same
#                           2,000 transfers from 1 and 3 peers  blocks, just before each sync
#
#   benches/speed_table.sh                 # about 15 minutes (cpuminer-opt's first build: +3)
#   PAIRS=3 SECS=10 benches/speed_table.sh
#
# Run it on a quiet machine: the ratios are robust to drift, not to a neighbour that takes a
# core away from one column of a pair. See docs/BENCHMARKS.md for recorded runs.
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS="${PAIRS:-5}"
SECS="${SECS:-10}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

echo "== building the benches (release)"
cargo bench --no-run --bench pow --bench validation --bench mempool --bench relay \
  >"$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }
cargo build --release -p cairn -p cairn-loadtest >>"$out/build.log" 2>&1 \
  || { cat "$out/build.log"; exit 1; }

echo "== mining: Cairn's kernel / cpuminer-opt, one thread each ($PAIRS pairs of ${SECS} s)"
PAIRS="$PAIRS" SECS="$SECS" benches/pow_vs_cpuminer.sh | tee "$out/pow.txt" | grep -E '^(CPU|pair|cairn /)'

echo "== validation of a 2,000-transfer block / raw verification of its signatures"
cargo bench --bench validation -- paired 2>/dev/null | grep '^paired' | tee "$out/validation.txt"

echo "== mempool admission / raw verification, one thread"
cargo bench --bench mempool -- paired 2>/dev/null | grep '^paired' | tee "$out/mempool.txt"

echo "== compact / whole-block relay of a 2,000-transfer block to 8 nodes ($PAIRS pairs)"
PAIRS="$PAIRS" cargo bench --bench relay 2>/dev/null | grep -E '^ *(compact|full)|^compact /' \
  | tee "$out/relay.txt"

echo "== sync of 60 blocks of 2,000 transfers / in-memory validation of them ($PAIRS pairs each)"
SYNC_BLOCKS=60 SYNC_RUNS="$PAIRS" "${CARGO_TARGET_DIR:-target}/release/cairn-loadtest" net sync \
  | grep -E '^(run|sync /)' | tee "$out/sync.txt"

echo
echo "== summary (targets from issue 14)"
printf '%-34s %s\n' "mining (>= 1.0)" "$(sed -n 's/.*per thread: //p' "$out/pow.txt")"
printf '%-34s %s\n' "validation (>= 0.85, 2 threads)" \
  "$(sed -n 's/.*validation \/ verification of parsed keys: \([^;]*\);.*/\1/p' "$out/validation.txt")"
printf '%-34s %s\n' "mempool admission (>= 0.90)" \
  "$(sed -n 's/^paired admission: \(.*\); the signature.*/\1/p' "$out/mempool.txt")"
printf '%-34s %s\n' "compact relay bytes (< 0.10)" \
  "$(sed -n 's/^compact \/ full, median of [0-9]* pairs: //p' "$out/relay.txt")"
printf '%-34s %s\n' "sync, 1 peer (>= 0.90)" \
  "$(sed -n 's/^sync \/ in-memory validation, 1 peer(s), median of [0-9]* pairs: \([^;]*\);.*/\1/p' "$out/sync.txt")"
printf '%-34s %s\n' "sync, 3 peers (>= 0.90)" \
  "$(sed -n 's/^sync \/ in-memory validation, 3 peer(s), median of [0-9]* pairs: \([^;]*\);.*/\1/p' "$out/sync.txt")"
