#!/usr/bin/env bash
# Measures how the embedded dev chain's difficulty settles: starts a fresh mining node on the
# dev chain (release build, all cores), lets it run for MINUTES (default 15), then reads every
# block's timestamp over the API and prints the mean block interval per 3-minute window.
# The dev spec aims at 10 s; "settled" means the last windows average close to it.
#
#   bash benches/dev_settle.sh [MINUTES]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-15}"
target_dir="${CARGO_TARGET_DIR:-target}"
cargo build --release --quiet --bin cairn
bin="$target_dir/release/cairn"
data="$(mktemp -d)"
log="$data/node.log"
"$bin" node --data-dir "$data" --mine --http 127.0.0.1:0 >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 100); do [ -s "$data/api.addr" ] && break; sleep 0.1; done
api="http://$(cat "$data/api.addr")/api/v1"
start=$(date +%s)
echo "dev node up at $api; mining for $minutes minutes (started $(date -u +%H:%M:%S) UTC)"
sleep $((minutes * 60))
tip_json=$(curl -s "$api/tip")
rates=$(grep 'hash rate' "$log" | sed -E 's/.*hash rate ([0-9.]+) MH.*/\1/' | tr '\n' ' ')
height=$(echo "$tip_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["height"])')
bits=$(echo "$tip_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bits"])')
times=""
for h in $(seq 1 "$height"); do
  times="$times $(curl -s "$api/blocks/$h" | python3 -c 'import json,sys; print(json.load(sys.stdin)["time"])')"
done
python3 - "$start" "$minutes" "$bits" "$rates" $times <<'PY'
import sys
start, minutes, bits, rates = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3], 16), sys.argv[4]
times = [int(t) for t in sys.argv[5:]]
rates = [float(r) for r in rates.split()]
size, mantissa = bits >> 24, bits & 0x7fffff
target = mantissa << (8 * (size - 3)) if size > 3 else mantissa >> (8 * (3 - size))
hashes_per_block = 2**256 // (target + 1)
recent = rates[-30:] if rates else [0.0]
rate = sorted(recent)[len(recent) // 2] * 1e6
print(f"hash rate (median of the last {len(recent)} reports): {rate/1e6:.1f} MH/s")
print(f"tip difficulty {bits:#010x}: {hashes_per_block/1e6:.0f} M hashes per block,"
      f" i.e. {hashes_per_block / rate:.1f} s per block at that hash rate (target 10 s)")
print(f"{len(times)} blocks in {minutes} min: mean interval {minutes*60/max(len(times),1):.1f} s;"
      f" first block at +{times[0]-start if times else 0}s")
last = [t for t in times if t >= start + minutes * 60 // 2]
print(f"second half: {len(last)} blocks, mean interval {minutes*30/max(len(last),1):.1f} s")
window = 180
for w in range(0, minutes * 60, window):
    inside = [t for t in times if start + w <= t < start + w + window]
    mean = window / len(inside) if inside else float("inf")
    print(f"  minute {w//60:2d}-{(w+window)//60:2d}: {len(inside):3d} blocks, mean interval {mean:6.1f} s")
PY
