#!/usr/bin/env bash
# Fuzz every parser of untrusted bytes with libFuzzer (see Fuzz/README.md).
#
#   Scripts/fuzz.sh [SECONDS] [TARGET...]   build all targets, run each (or the named ones) for SECONDS (default 20;
#                                           0 only builds)
#   Scripts/fuzz.sh minimize TARGET FILE    shrink a crashing input (libFuzzer -minimize_crash=1)
#
# Corpora grow under .build-fuzz/corpus/TARGET (seeded from Tests/Vectors and Fuzz/Seeds on every run); findings
# (crash-*, timeout-*, oom-*, slow-unit-*) are kept under .build-fuzz/findings/TARGET, or $FUZZ_FINDINGS/TARGET.
# Exits non-zero when the build fails or any target finds a crash, a timeout or an out-of-memory input.
#
# Environment: FUZZ_TIMEOUT (seconds one input may take, default 10), FUZZ_RSS_MB (memory limit, default 2048),
# FUZZ_NICE (niceness, default 19), FUZZ_JOBS (parallel build jobs, default: SwiftPM's).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scratch="$root/.build-fuzz"
findings="${FUZZ_FINDINGS:-$scratch/findings}"
timeout="${FUZZ_TIMEOUT:-10}"
rss="${FUZZ_RSS_MB:-2048}"
nice=(nice -n "${FUZZ_NICE:-19}")
vectors="$root/Tests/Vectors"

build() {
    # Same dependency versions as the main package.
    if [[ -f Package.resolved && ! -f Fuzz/Package.resolved ]]; then cp Package.resolved Fuzz/Package.resolved; fi
    local jobs=()
    if [[ -n "${FUZZ_JOBS:-}" ]]; then jobs=(--jobs "$FUZZ_JOBS"); fi
    mkdir -p "$scratch"
    # The main package is a dependency here, and SwiftPM does not notice files added to a dependency: drop the
    # cached build plan so that it is made again from the current sources (the compiled modules are kept).
    rm -f "$scratch/debug.yaml" "$scratch"/*/debug/description.json
    echo "==> building the fuzz targets (swiftc -sanitize=fuzzer,address) in $scratch"
    local start=$SECONDS
    if ! "${nice[@]}" swift build -c debug --package-path Fuzz --scratch-path "$scratch" "${jobs[@]}" \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library >"$scratch/fuzz-build.log" 2>&1; then
        grep -E "error:" "$scratch/fuzz-build.log" | sort -u | head -40 || true
        echo "fuzz build failed (full log: $scratch/fuzz-build.log)" >&2
        exit 2
    fi
    echo "    built in $((SECONDS - start)) s"
    bin="$(swift build -c debug --package-path Fuzz --scratch-path "$scratch" --show-bin-path)"
}

# Seed files from Tests/Vectors for a target, one path per line.
seeds() {
    cd "$vectors"
    case "$1" in
        FuzzDCAPQuote)
            find . -type f \( -name '*quote*.dat' -o -name 'quote.dat' -o -name 'tdx_quote' -o -name 'tdx_quote_outdated' \
                -o -name 'sgx_quote' -o -name 'td-quote.bin' -o -name 'phala_*.bin' \) ;;
        FuzzSEVSNPReport)
            find . -type f \( -name 'attestation.bin' -o -name '*report*.bin' -o -name 'virtee_report_milan.bin' \) \
                ! -name 'hcl-report.bin' ;;
        FuzzAMDCertificate)
            find snp azure-vtpm -type f \( -name '*.der' -o -name '*.pem' -o -name '*.testcer' -o -name 'cert_chain_*' \) ;;
        FuzzCRL)
            find . -type f \( -iname '*crl*' \) ;;
        FuzzCollateralJSON)
            find . -type f \( -name '*collateral*.json' -o -path './derived/collateral-dcapqvl-json/*' \
                -o -name 'sample_*_response*' \) ;;
        FuzzJSONValue | FuzzJSONReaders)
            find . -type f \( -name '*.json' -o -name 'sample_*_response*' \) -size -64k ;;
        FuzzTCBInfo)
            find . -type f \( -iname 'tcbinfo.json' -o -iname 'sample_tcbinfo_response*' \) ;;
        FuzzQEIdentity)
            find . -type f \( -iname 'q?eidentity.json' -o -iname 'sample_qeidentity_response' \) ;;
        FuzzVTPMEvidence)
            find azure-vtpm snp -type f -name '*evidence*.json' ;;
        FuzzHCLReport)
            find azure-vtpm -type f -name 'hcl-report.bin' ;;
        FuzzTPMQuote)
            find azure-vtpm -type f -name 'tpm-quote.msg' ;;
        *) ;;  # FuzzPolicy, FuzzBinaryCodec, FuzzFrameReader: Fuzz/Seeds and seeds the target writes itself
    esac
    cd "$root"
}

# One libFuzzer statistic from a log.
stat() { grep -E "^stat::$1:" "$2" | tail -1 | awk '{print $2}'; }

run_target() {
    local target=$1 seconds=$2
    local corpus="$scratch/corpus/$target" found="$findings/$target" log="$scratch/logs/$target.log"
    mkdir -p "$corpus" "$found" "$scratch/logs"
    while IFS= read -r file; do
        [[ -n "$file" ]] && cp "$vectors/$file" "$corpus/vector-$(echo "$file" | tr '/' '_')"
    done < <(seeds "$target")
    if [[ -d "Fuzz/Seeds/$target" ]]; then cp Fuzz/Seeds/"$target"/* "$corpus/"; fi
    local dict=()
    if [[ -f "Fuzz/Dictionaries/$target.dict" ]]; then dict=(-dict="Fuzz/Dictionaries/$target.dict"); fi
    local before
    before=$(find "$found" -type f | wc -l)
    local status=0
    FUZZ_SEED_DIR="$corpus" FUZZ_VECTORS="$vectors" ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}" SWIFT_BACKTRACE=enable=no \
        "${nice[@]}" "$bin/$target" "$corpus" "${dict[@]}" -max_total_time="$seconds" -timeout="$timeout" \
        -rss_limit_mb="$rss" -malloc_limit_mb="$rss" -detect_leaks=0 -print_final_stats=1 \
        -artifact_prefix="$found/" >"$log" 2>&1 || status=$?
    local after
    after=$(find "$found" -type f | wc -l)
    local execs rate units
    execs=$(stat number_of_executed_units "$log")
    rate=$(stat average_exec_per_sec "$log")
    units=$(find "$corpus" -type f | wc -l)
    local new=$((after - before)) verdict=ok
    if ((new > 0 || status != 0)); then
        verdict="FINDING (exit $status): $(grep -m1 -E 'ERROR: |Fatal error|deadly signal' "$log" || true)"
        failures=$((failures + 1))
    fi
    printf '%-28s %12s %9s %7s %9s  %s\n' "$target" "${execs:-?}" "${rate:-?}" "$units" "$new" "$verdict"
    if [[ $verdict != ok ]]; then
        find "$found" -type f -newer "$log.start" 2>/dev/null | sed 's/^/      input: /' || true
        echo "      log: $log"
    fi
}

if [[ "${1:-}" == minimize ]]; then
    [[ $# -eq 3 ]] || { echo "usage: $0 minimize TARGET FILE" >&2; exit 64; }
    build
    ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}" SWIFT_BACKTRACE=enable=no \
        exec "${nice[@]}" "$bin/$2" -minimize_crash=1 -runs=20000 -timeout="$timeout" -rss_limit_mb="$rss" \
        -exact_artifact_path="$3.min" "$3"
fi

seconds="${1:-20}"
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS] [TARGET...] | minimize TARGET FILE" >&2; exit 64; }
shift || true
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    targets=()
    for dir in Fuzz/Sources/Fuzz*/; do targets+=("$(basename "$dir")"); done
fi

total_start=$SECONDS
build
if ((seconds == 0)); then exit 0; fi  # build only (libFuzzer reads -max_total_time=0 as "no limit")
failures=0
echo "==> fuzzing ${#targets[@]} targets for $seconds s each (timeout ${timeout} s per input, ${rss} MB)"
printf '%-28s %12s %9s %7s %9s  %s\n' target executions exec/s corpus findings verdict
for target in "${targets[@]}"; do
    [[ -x "$bin/$target" ]] || { echo "no fuzz target $target" >&2; exit 64; }
    mkdir -p "$scratch/logs"
    touch "$scratch/logs/$target.log.start"
    run_target "$target" "$seconds"
done
echo "==> done in $((SECONDS - total_start)) s; findings under $findings"
if ((failures > 0)); then
    echo "$failures target(s) found crashes, timeouts or out-of-memory inputs" >&2
    exit 1
fi
