#!/usr/bin/env bash
# Cairn's mining kernel against cpuminer-opt (the fastest public CPU SHA-256d miner), one
# thread each, side by side: the two run in turn, PAIRS times, and the ratio is taken pair by
# pair (the machine's speed drifts; a ratio within one pair does not).
#
#   benches/pow_vs_cpuminer.sh                     # 5 pairs of 20 s each
#   PAIRS=3 SECS=10 benches/pow_vs_cpuminer.sh
#   CPUMINER_SRC=/path/to/cpuminer-opt benches/pow_vs_cpuminer.sh   # a checkout already here
#
# cpuminer-opt is built from its public source (https://github.com/JayDDee/cpuminer-opt,
# GPL-2.0) into ~/.cache/cairn-cpuminer (CPUMINER_CACHE), never into this repository, with
# its own build flags (-O3 -march=native, so its widest SIMD path for this CPU). Its build
# needs autotools, a C compiler and a few libraries: on Debian
#   apt-get install build-essential automake pkg-config libssl-dev libcurl4-openssl-dev \
#     libjansson-dev libgmp-dev zlib1g-dev
# Cairn's side is the `pow` criterion bench's `pow/midstate` (the kernel the miner picks),
# measured for the same number of seconds. Both are pinned to CPU 0.
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS="${PAIRS:-5}"
SECS="${SECS:-20}"
CACHE="${CPUMINER_CACHE:-$HOME/.cache/cairn-cpuminer}"
REPO_URL="https://github.com/JayDDee/cpuminer-opt"
die() { echo "pow_vs_cpuminer: $*" >&2; exit 1; }

# ---- cpuminer-opt, built once into the cache ----
if [ ! -x "$CACHE/src/cpuminer" ]; then
  mkdir -p "$CACHE"
  rm -rf "$CACHE/src"
  if [ -n "${CPUMINER_SRC:-}" ]; then
    if [ -d "$CPUMINER_SRC/.git" ] || [ -f "$CPUMINER_SRC/HEAD" ]; then
      git --git-dir="$( [ -d "$CPUMINER_SRC/.git" ] && echo "$CPUMINER_SRC/.git" || echo "$CPUMINER_SRC")" \
        archive --prefix=src/ HEAD | tar -x -C "$CACHE"
    else
      cp -r "$CPUMINER_SRC" "$CACHE/src"
    fi
  else
    git clone --depth 1 "$REPO_URL" "$CACHE/src" || die "cannot clone $REPO_URL (set CPUMINER_SRC)"
  fi
  for tool in autoreconf make cc; do
    command -v "$tool" >/dev/null || die "building cpuminer-opt needs $tool (see the top of this script)"
  done
  (
    cd "$CACHE/src"
    ./autogen.sh >"$CACHE/build.log" 2>&1
    CFLAGS="-O3 -march=native -Wall" ./configure --with-curl >>"$CACHE/build.log" 2>&1
    make -j "$(nproc)" >>"$CACHE/build.log" 2>&1
  ) || die "cpuminer-opt did not build; see $CACHE/build.log"
fi
CPUMINER="$CACHE/src/cpuminer"

# ---- Cairn's bench, built once ----
cargo bench --bench pow --no-run >/dev/null 2>&1
BENCH="$(ls -t "${CARGO_TARGET_DIR:-target}"/release/deps/pow-* | grep -v '\.d$' | head -n 1)"
[ -x "$BENCH" ] || die "no pow bench binary"

# One thread of cpuminer-opt for SECS seconds (its own benchmark mode, no pool): the mean of
# the rates it reports every few seconds ("Total: 28.61 MH/s"), the first left out as
# warm-up, in hashes/s. (timeout's status 124 is the expected end.)
cpuminer_rate() {
  { timeout --signal=INT "$SECS" taskset -c 0 "$CPUMINER" -a sha256d -t 1 --benchmark \
      --no-color 2>&1 || true; } \
    | sed -n 's/.*Total: \([0-9.]*\) \([kMG]\)H\/s.*/\1 \2/p' | awk '
      { r = $1; if ($2 == "k") r *= 1e3; if ($2 == "M") r *= 1e6; if ($2 == "G") r *= 1e9;
        all[++n] = r }
      END { from = (n > 1) ? 2 : 1; for (i = from; i <= n; i++) { sum += all[i]; k++ }
        if (k) printf "%.0f\n", sum / k; else print "0" }'
}

# Cairn's `pow/midstate` for SECS seconds on core 0: criterion's median elements/s.
cairn_rate() {
  taskset -c 0 "$BENCH" --bench "pow/midstate/" --warm-up-time 1 --measurement-time "$SECS" \
    --noplot 2>&1 | awk '/thrpt:/ && /elem\/s/ && !seen { v = $4; u = $5; seen = 1 } END {
      if (u ~ /^Melem/) v *= 1e6; else if (u ~ /^Kelem/) v *= 1e3; else if (u ~ /^Gelem/) v *= 1e9;
      printf "%.0f\n", v }'
}

echo "== Cairn's mining kernel against cpuminer-opt, 1 thread each, $PAIRS pairs of ${SECS}s"
echo "CPU: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1); load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cpuminer-opt: $("$CPUMINER" --version 2>&1 | sed -n 's/.*\(cpuminer-opt [0-9.]*\).*/\1/p' | head -n 1)"
ratios=()
for pair in $(seq 1 "$PAIRS"); do
  theirs="$(cpuminer_rate)"
  ours="$(cairn_rate)"
  ratio="$(awk -v a="$ours" -v b="$theirs" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "nan" }')"
  ratios+=("$ratio")
  printf 'pair %d: cairn %.2f MH/s, cpuminer-opt %.2f MH/s, ratio %s\n' \
    "$pair" "$(awk -v x="$ours" 'BEGIN { print x / 1e6 }')" \
    "$(awk -v x="$theirs" 'BEGIN { print x / 1e6 }')" "$ratio"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END {
  m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2;
  printf "cairn / cpuminer-opt per thread: median %.3f (min %.3f, max %.3f) over %d pairs\n", m, a[1], a[NR], NR }'
