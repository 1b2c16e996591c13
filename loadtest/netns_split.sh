#!/usr/bin/env bash
# Real `cairn` processes at scale, each in a network namespace of its own: NODES nodes
# (default 30) on one bridge, MINERS of them mining, every link delayed 20-200 ms with 1% loss
# (netem), split into two groups for SPLIT_SECS (default 120) while they mine, then healed.
# Reports the time from the heal until every node has the same tip and state root, against
# the block interval of the run (the goal: within two block intervals).
#
#   sudo loadtest/netns_split.sh                       # 30 nodes, 4 miners, a 2-minute split
#   sudo NODES=8 WARMUP_SECS=60 loadtest/netns_split.sh
#   sudo NETEM=off loadtest/netns_split.sh             # a kernel without sch_netem: no delay/loss
#   sudo NETEM=auto MAX_INTERVALS=2 loadtest/netns_split.sh   # netem if the kernel has it; fail
#                                                      # if agreement takes over 2 intervals
#
# Needs root, iproute2 (`ip`, `tc`; `apt-get install iproute2`), curl and jq. Builds the
# release `cairn` unless CAIRN names a binary. Creates namespaces cairn<run>-hub and
# cairn<run>-n<i>, <run> random for each run (two runs on one host, or a run killed before it
# could clean up, never collide), a bridge per group in the hub (the split moves group B's
# links to the second bridge), and removes them all, with every node, when it ends or is
# interrupted. A run killed with SIGKILL leaves its namespaces; list them with
# `ip netns list | grep ^cairn` and remove each with `ip netns del`. Nothing leaves the
# namespaces: the nodes listen on 10.77.0.0/16 and on their own namespace's loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

NODES="${NODES:-30}"
MINERS="${MINERS:-4}"
SPLIT_SECS="${SPLIT_SECS:-120}"
WARMUP_SECS="${WARMUP_SECS:-120}"
CONVERGE_LIMIT_SECS="${CONVERGE_LIMIT_SECS:-300}"
NETEM="${NETEM:-on}"
MAX_INTERVALS="${MAX_INTERVALS:-}"
SEED="${SEED:-$RANDOM}"
RUN="cairn$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
HUB="$RUN-hub"
node_ns() { echo "$RUN-n$1"; }

die() { echo "netns_split: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (network namespaces): run it with sudo"
for tool in ip tc curl jq; do
  command -v "$tool" >/dev/null || die "needs $tool (apt-get install iproute2 curl jq)"
done
[ "$NODES" -ge 4 ] || die "NODES must be at least 4"
[ "$MINERS" -ge 2 ] && [ "$MINERS" -le "$NODES" ] || die "MINERS must be 2..NODES"

if [ -z "${CAIRN:-}" ]; then
  cargo build --release --bin cairn
  CAIRN="${CARGO_TARGET_DIR:-target}/release/cairn"
fi
[ -x "$CAIRN" ] || die "no cairn binary at $CAIRN"
WORK="$(mktemp -d -t cairn-netns-XXXXXX)"
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for i in $(seq 0 $((NODES - 1))); do ip netns del "$(node_ns "$i")" 2>/dev/null || true; done
  ip netns del "$HUB" 2>/dev/null || true
  if [ "${KEEP:-}" = 1 ]; then echo "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT INT TERM

RANDOM="$SEED"
echo "== $NODES nodes, $MINERS mining, split for ${SPLIT_SECS}s, netem $NETEM, seed $SEED"
echo "binary: $CAIRN; load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# The chain: the dev spec with genesis now (on schedule), easy bits and no mDNS.
"$CAIRN" chain-spec show dev \
  | sed -e "s/^time = .*/time = $(($(date +%s) - 10))/" \
        -e 's/^bits = .*/bits = "0x1e00ffff"/' \
        -e 's/^mdns = .*/mdns = false/' \
        -e 's/^name = .*/name = "Cairn netns split"/' \
        -e 's/^id = .*/id = "netns"/' >"$WORK/spec.toml"
MINER_ADDRESS="$(sed -n 's/^address = "\(.*\)"/\1/p' "$WORK/spec.toml" | head -n 1)"

# The network: a hub namespace with two bridges; each node's namespace has one veth into the
# first, its end in the hub named v<i>.
ip netns add "$HUB"
ip -n "$HUB" link set lo up
for bridge in br0 br1; do
  ip -n "$HUB" link add "$bridge" type bridge
  ip -n "$HUB" link set "$bridge" up
done
for i in $(seq 0 $((NODES - 1))); do
  ns="$(node_ns "$i")"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip link add "v$i" netns "$HUB" type veth peer name eth0 netns "$ns"
  ip -n "$HUB" link set "v$i" master br0 up
  ip -n "$ns" addr add "10.77.0.$((i + 1))/16" dev eth0
  ip -n "$ns" link set eth0 up
  if [ "$NETEM" != off ]; then
    delay=$((20 + RANDOM % 181))
    if ! ip netns exec "$ns" tc qdisc add dev eth0 root netem delay "${delay}ms" loss 1% 2>"$WORK/tc.err"; then
      [ "$NETEM" = auto ] || die "cannot add netem ($(cat "$WORK/tc.err")): this kernel lacks sch_netem; load it (modprobe sch_netem) or run with NETEM=off"
      echo "netem: this kernel lacks sch_netem ($(cat "$WORK/tc.err")); links without delay or loss"
      NETEM=off
    fi
  fi
done

api() { ip netns exec "$(node_ns "$1")" curl -sf --max-time 5 "http://127.0.0.1:7371$2"; }

# The nodes: node i boots from up to two earlier nodes.
for i in $(seq 0 $((NODES - 1))); do
  dir="$WORK/n$i"
  mkdir -p "$dir"
  args=(node --data-dir "$dir" --chain "$WORK/spec.toml" --http 127.0.0.1:7371
        --listen "/ip4/10.77.0.$((i + 1))/tcp/7370" --no-mdns --no-explorer)
  if [ "$i" -lt "$MINERS" ]; then
    args+=(--mine --threads 1 --miner-address "$MINER_ADDRESS")
  fi
  if [ "$i" -gt 0 ]; then
    for pick in $((RANDOM % i)) $((RANDOM % i)); do
      args+=(--bootnode "$(cat "$WORK/n$pick/p2p.addr")")
    done
  fi
  ip netns exec "$(node_ns "$i")" env NO_COLOR=1 "$CAIRN" "${args[@]}" >"$WORK/n$i.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    [ -s "$dir/p2p.addr" ] && grep -q /p2p/ "$dir/p2p.addr" && break
    sleep 0.1
  done
  grep -q /p2p/ "$dir/p2p.addr" 2>/dev/null || die "node $i did not start (log $WORK/n$i.log)"
done
echo "started $NODES nodes; warming up for ${WARMUP_SECS}s"
sleep "$WARMUP_SECS"

tips() {
  for i in $(seq 0 $((NODES - 1))); do
    api "$i" /api/v1/tip | jq -r '"\(.height) \(.hash) \(.state_root)"' 2>/dev/null || echo "? down"
  done
}
heights() { tips | awk '{ print $1 }' | sort -n | uniq -c | awk '{ printf "%s×h%s ", $1, $2 }'; }
echo "before the split: $(heights)"

# The split: odd nodes (half the miners among them) move to the second bridge.
for i in $(seq 1 2 $((NODES - 1))); do ip -n "$HUB" link set "v$i" master br1; done
echo "split: even nodes | odd nodes, for ${SPLIT_SECS}s"
sleep "$SPLIT_SECS"
echo "at the heal: $(heights)"
for i in $(seq 1 2 $((NODES - 1))); do ip -n "$HUB" link set "v$i" master br0; done
healed=$(date +%s.%N)

converged=""
while :; do
  distinct=$(tips | awk '{ print $2, $3 }' | sort -u | wc -l)
  now=$(date +%s.%N)
  if [ "$distinct" = 1 ] && ! tips | grep -q '^?'; then
    converged=$(awk -v a="$now" -v b="$healed" 'BEGIN { print a - b }')
    break
  fi
  if awk -v a="$now" -v b="$healed" -v l="$CONVERGE_LIMIT_SECS" 'BEGIN { exit !(a - b > l) }'; then
    break
  fi
  sleep 1
done

# The block interval of the run: the mean over the best chain's last blocks.
tip_height=$(api 0 /api/v1/tip | jq -r .height)
back=$((tip_height > 30 ? 30 : tip_height - 1))
t_new=$(api 0 "/api/v1/blocks/$tip_height" | jq -r .time)
t_old=$(api 0 "/api/v1/blocks/$((tip_height - back))" | jq -r .time)
interval=$(awk -v a="$t_new" -v b="$t_old" -v n="$back" 'BEGIN { printf "%.1f", (a - b) / n }')
reorged=$(grep -l "reorganized:" "$WORK"/n*.log 2>/dev/null | wc -l)
deepest=$(grep -ho "reorganized: [0-9]* blocks off" "$WORK"/n*.log 2>/dev/null \
  | awk '{ print $2 }' | sort -n | tail -n 1)

echo "== result"
echo "tip height $tip_height; mean block interval over the last $back blocks: ${interval}s"
echo "nodes that logged a reorg: $reorged of $NODES (the deepest ${deepest:-0} blocks off)"
if [ -n "$converged" ]; then
  ratio=$(awk -v c="$converged" -v i="$interval" 'BEGIN { printf "%.2f", c / i }')
  printf 'every node on one tip and state root %.1fs after the heal (%s block intervals; goal: 2)\n' "$converged" "$ratio"
  if [ -n "$MAX_INTERVALS" ] && awk -v r="$ratio" -v m="$MAX_INTERVALS" 'BEGIN { exit !(r > m) }'; then
    echo "FAILED: more than $MAX_INTERVALS block intervals (MAX_INTERVALS)"
    KEEP=1
    exit 1
  fi
else
  echo "NO agreement within ${CONVERGE_LIMIT_SECS}s of the heal: $(heights)"
  KEEP=1
  exit 1
fi
