#!/usr/bin/env bash
# Load on the block explorer over loopback: requests per second and latency percentiles of
# the home page and a block page under concurrent clients, measured with wrk.
#
#   bash benches/explorer_load.sh [SECONDS] [CONNECTIONS]     (defaults: 20 s, 32 connections)
#
# It builds the release `cairn`, mines a fast throwaway chain (the dev spec with a 1 s block
# time and an easy genesis target, like the process tests) to at least 300 blocks, restarts
# the node WITHOUT mining (so the miner does not compete for the cores), then runs wrk with 2
# threads against http://127.0.0.1:<port>/ and /block/<tip - 10>, and the JSON API's
# /api/v1/tip for comparison. wrk and the node share the machine: on 2 cores the numbers are
# a floor. Installs Debian's wrk if it is missing (as root, or with sudo).
# Everything started here is stopped on exit. See docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
conns="${2:-32}"
target_dir="${CARGO_TARGET_DIR:-target}"

if ! command -v wrk >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" != 0 ] && sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk
fi
cargo build --release --quiet --bin cairn
bin="$target_dir/release/cairn"
data="$(mktemp -d)"
pid=""
stop() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; pid=""; }
trap 'stop; rm -rf "$data"' EXIT

# The dev spec made fast (as tests/common/mod.rs does for the process tests).
"$bin" chain-spec show dev | sed \
  -e 's/^name = .*/name = "Cairn Load Bench"/' -e 's/^id = .*/id = "loadbench"/' \
  -e 's/^chain_id = .*/chain_id = 7358/' -e '0,/^bits = .*/s//bits = "0x1f00ffff"/' \
  -e 's/^ideal_block_time_secs = .*/ideal_block_time_secs = 1/' \
  -e 's/^asert_half_life_secs = .*/asert_half_life_secs = 60/' -e 's/^mdns = .*/mdns = false/' \
  > "$data/spec.toml"

start_node() {
  rm -f "$data/node/api.addr"
  "$bin" node --data-dir "$data/node" --chain "$data/spec.toml" --http 127.0.0.1:0 \
    --listen /ip4/127.0.0.1/tcp/0 --no-mdns "$@" >>"$data/node.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do [ -s "$data/node/api.addr" ] && break; sleep 0.1; done
  if [ ! -s "$data/node/api.addr" ]; then
    echo "the node did not start; its log:" >&2; cat "$data/node.log" >&2; exit 1
  fi
  base="http://$(cat "$data/node/api.addr")"
}
height() { curl -sf "$base/api/v1/tip" | python3 -c 'import json,sys; print(json.load(sys.stdin)["height"])'; }

miner="$(grep -m1 -o 'address = "[a-z0-9]*"' "$data/spec.toml" | cut -d'"' -f2)"
start_node --mine --threads 1 --miner-address "$miner"
echo "mining a throwaway chain to height 300 at $base ..."
for _ in $(seq 600); do [ "$(height)" -ge 300 ] && break; sleep 1; done
stop
start_node
tip="$(height)"
echo "node (not mining) at $base, tip $tip"
echo "machine: $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

run() {
  local name="$1" url="$2"
  curl -sf -o /dev/null "$url"   # warm
  local out
  out="$(wrk -t2 -c"$conns" -d"${secs}s" --latency "$url")"
  local rps p50 p99 errors
  rps="$(echo "$out" | awk '/^Requests\/sec/ {print $2}')"
  p50="$(echo "$out" | awk '$1 == "50%" {print $2}')"
  p99="$(echo "$out" | awk '$1 == "99%" {print $2}')"
  errors="$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')"
  printf '| %-28s | %10s | %8s | %8s | %s\n' "$name" "$rps" "$p50" "$p99" "${errors:-no errors}"
}
echo
echo "wrk -t2 -c$conns -d${secs}s"
printf '| %-28s | %10s | %8s | %8s | %s\n' "page" "req/s" "median" "p99" "errors"
run "home /" "$base/"
run "block /block/$((tip - 10))" "$base/block/$((tip - 10))"
run "API /api/v1/tip (reference)" "$base/api/v1/tip"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
