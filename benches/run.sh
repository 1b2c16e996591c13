#!/usr/bin/env bash
# Runs the proof-of-work and block validation benchmarks and prints a summary table.
#
#   benches/run.sh            # one run of each bench (about 2 minutes after the build)
#   RUNS=3 benches/run.sh     # three runs; the table shows each run, the best and the median
#
# What the numbers mean, and the acceptance targets, are in docs/BENCHMARKS.md.
# Respects CARGO_TARGET_DIR. Needs openssl (OPENSSL=/path/to/openssl to override) and jq or
# python3 to read criterion's JSON.
set -euo pipefail

cd "$(dirname "$0")/.."

RUNS="${RUNS:-1}"
OPENSSL="${OPENSSL:-$(command -v openssl || echo /usr/bin/openssl)}"

# Criterion writes its results under <target dir>/criterion.
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    TARGET_DIR="$CARGO_TARGET_DIR"
elif command -v jq >/dev/null 2>&1; then
    TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)"
else
    TARGET_DIR="target"
fi
CRITERION_DIR="$TARGET_DIR/criterion"

# Prints "<elements per second>" for a criterion benchmark id such as pow/midstate/262144,
# from the median time per iteration and the declared throughput.
rate() {
    local dir="$CRITERION_DIR/$1/new"
    if command -v jq >/dev/null 2>&1; then
        local ns elements
        ns="$(jq -r .median.point_estimate "$dir/estimates.json")"
        elements="$(jq -r .throughput.Elements "$dir/benchmark.json")"
        awk -v e="$elements" -v ns="$ns" 'BEGIN { printf "%.0f\n", e / (ns * 1e-9) }'
    else
        python3 - "$dir" <<'EOF'
import json, sys
d = sys.argv[1]
ns = json.load(open(d + "/estimates.json"))["median"]["point_estimate"]
e = json.load(open(d + "/benchmark.json"))["throughput"]["Elements"]
print(round(e / (ns * 1e-9)))
EOF
    fi
}

# Median of the arguments (numbers); for an even count, the lower middle value.
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# Largest of the arguments.
best() {
    printf '%s\n' "$@" | sort -g | tail -n 1
}

echo "== machine"
echo "cpus: $(nproc)   model: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
if grep -qw sha_ni /proc/cpuinfo; then echo "sha_ni: yes"; else echo "sha_ni: no"; fi
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)  (other work on the machine skews results, the 2-thread ones most)"
echo

echo "== building benches (release profile)"
cargo bench --no-run --bench pow --bench validation

declare -a CEILING MIDSTATE NAIVE V1 V2 S1 S2
for run in $(seq 1 "$RUNS"); do
    echo
    echo "== run $run of $RUNS: openssl speed -evp sha256 -bytes 16384 -seconds 3 (one core)"
    # The last line reads "sha256  <1000s of bytes per second>k".
    kbytes="$("$OPENSSL" speed -evp sha256 -bytes 16384 -seconds 3 2>/dev/null |
        awk '$1 == "sha256" { v = $NF } END { sub(/k$/, "", v); print v }')"
    # bytes/s / 64 bytes per compression / 2 compressions per attempt
    CEILING+=("$(awk -v k="$kbytes" 'BEGIN { printf "%.0f\n", k * 1000 / 64 / 2 }')")

    echo "== run $run of $RUNS: cargo bench --bench pow"
    cargo bench --bench pow
    MIDSTATE+=("$(rate pow/midstate/65536)")
    NAIVE+=("$(rate pow/naive/32768)")

    echo "== run $run of $RUNS: cargo bench --bench validation"
    cargo bench --bench validation
    V1+=("$(rate 'validation/body+state/1')")
    V2+=("$(rate 'validation/body+state/2')")
    S1+=("$(rate validation/state/1)")
    S2+=("$(rate validation/state/2)")
done

pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f%%", 100 * a / b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }

row() { # label, then one value per run
    local label="$1"
    shift
    printf '%-46s' "$label"
    for v in "$@"; do printf '%14s' "$v"; done
    echo
}

echo
echo "== summary (criterion medians; one column per run, then best and median over runs)"
header=("")
for run in $(seq 1 "$RUNS"); do header+=("run $run"); done
header+=("best" "median")
row "${header[@]}"

summary() { # label, values...
    local label="$1"
    shift
    row "$label" "$@" "$(best "$@")" "$(median "$@")"
}

summary "ceiling attempts/s/core (openssl / 64 / 2)" "${CEILING[@]}"
summary "midstate attempts/s (one core)" "${MIDSTATE[@]}"
summary "naive Header::hash attempts/s (one core)" "${NAIVE[@]}"
summary "body+state transfers/s, 1 thread" "${V1[@]}"
summary "body+state transfers/s, 2 threads" "${V2[@]}"
summary "state only transfers/s, 1 thread" "${S1[@]}"
summary "state only transfers/s, 2 threads" "${S2[@]}"

declare -a PCT SPEED SSPEED GAIN
for i in "${!CEILING[@]}"; do
    PCT+=("$(pct "${MIDSTATE[$i]}" "${CEILING[$i]}")")
    GAIN+=("$(ratio "${MIDSTATE[$i]}" "${NAIVE[$i]}")")
    SPEED+=("$(ratio "${V2[$i]}" "${V1[$i]}")")
    SSPEED+=("$(ratio "${S2[$i]}" "${S1[$i]}")")
done
BEST_CEIL="$(best "${CEILING[@]}")"
BEST_MID="$(best "${MIDSTATE[@]}")"
MED_CEIL="$(median "${CEILING[@]}")"
MED_MID="$(median "${MIDSTATE[@]}")"
row "midstate, percent of ceiling (target >= 90%)" "${PCT[@]}" \
    "$(pct "$BEST_MID" "$BEST_CEIL")" "$(pct "$MED_MID" "$MED_CEIL")"
row "midstate gain over naive" "${GAIN[@]}" \
    "$(ratio "$BEST_MID" "$(best "${NAIVE[@]}")")" "$(ratio "$MED_MID" "$(median "${NAIVE[@]}")")"
row "body+state speedup 2 vs 1 (target >= 1.7x)" "${SPEED[@]}" \
    "$(ratio "$(best "${V2[@]}")" "$(best "${V1[@]}")")" \
    "$(ratio "$(median "${V2[@]}")" "$(median "${V1[@]}")")"
row "state only speedup 2 vs 1" "${SSPEED[@]}" \
    "$(ratio "$(best "${S2[@]}")" "$(best "${S1[@]}")")" \
    "$(ratio "$(median "${S2[@]}")" "$(median "${S1[@]}")")"
echo
echo "best/median columns of ratios compare the best (median) values of each row, not the ratios."
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
