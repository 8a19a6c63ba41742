# Shared by the scripts (hello.sh, cleanroom.sh, secret-processing.sh); sourced, not run. `demo_setup` defines
# what the rest uses (`work`, `log`, `started`, `step`, `done_steps`, `pids`, `fail`); the caller defines `cli` before
# `start_services`.

# `demo_setup NAME WORKDIR [keep]`: a fresh WORKDIR (kept as it is with `keep`), its build log, and the summary line
# printed on every exit, success or not: "NAME: OK in …" with the steps shown (and the build's time, once the caller
# sets `built_after`), or "NAME: FAILED while <step> …". Background processes in `pids` are stopped first.
demo_setup() {
    demo_name=$1
    work=$2
    if [ "${3:-}" != keep ]; then rm -rf "$work"; fi
    mkdir -p "$work"
    log="$work/build.log"
    : >"$log"
    started=$SECONDS
    done_steps=()
    step="building"
    pids=()
    trap demo_summary EXIT
}

demo_summary() {
    local status=$? elapsed=$((SECONDS - started))
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    local took="$((elapsed / 60))m$((elapsed % 60))s"
    local shown="${done_steps[*]:-nothing}"
    shown="${shown// /, }"
    shown="${shown//_/ }"
    if [ "$status" -eq 0 ]; then
        if [ -n "${built_after:-}" ]; then took="$took (build ${built_after}s, the flow $((elapsed - built_after))s)"; fi
        echo "$demo_name: OK in $took — ${shown}."
    else
        echo "$demo_name: FAILED while $step (exit $status) after $took — shown before that: ${shown}." >&2
    fi
}

fail() {
    echo "$demo_name: $*" >&2
    exit 1
}

# SwiftPM's progress, compacted: each module once as it starts compiling (C and C++ files as one "C sources"), and a
# line every 15 s while nothing new starts (BoringSSL, SQLite), so a cold build is seen to move. Full output: $log.
progress() {
    local line counter verb module file last_print=$SECONDS
    declare -A seen=()
    while IFS= read -r line; do
        printf '%s\n' "$line" >>"$log"
        case "$line" in
        \[*/*\]\ Compiling\ * | \[*/*\]\ Linking\ *)
            read -r counter verb module _ <<<"$line"
            file=""
            case "$module" in *.c | *.cc | *.cpp | *.S) file=" ($module)" module="C sources" ;; esac
            if [ -z "${seen[$module]:-}" ]; then
                seen[$module]=1
                printf '    %s %s %s\n' "$counter" "$verb" "$module"
                last_print=$SECONDS
            elif ((SECONDS - last_print >= 15)); then
                printf '    %s still compiling %s%s, %ss so far\n' "$counter" "$module" "$file" "$((SECONDS - started))"
                last_print=$SECONDS
            fi
            ;;
        Fetched\ * | *error:* | *"Build of product"* | *"Build complete"*) printf '    %s\n' "$line" ;;
        *"Another instance of SwiftPM"*) printf '    waiting for another build of this package to finish (SwiftPM lock)\n' ;;
        esac
    done
}

# `enclave serve` (attestation service on :8080, key broker on :8443) in the background, its data under
# $XDG_DATA_HOME; returns once both answer over TLS with the certificates they wrote, fails if either port is taken
# or the process exits.
start_services() {
    local attestation_cert="$XDG_DATA_HOME/enclavekit/attestation/tls/certificate.pem"
    local broker_cert="$XDG_DATA_HOME/enclavekit/keybroker/tls/certificate.pem"
    local port ready=""
    for port in 8080 8443; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            fail "port $port is in use (another enclave serve?); stop it and run again"
        fi
    done
    "$cli" serve >"$work/serve.log" 2>&1 &
    pids+=($!)
    # Up to 180 s: seconds alone, but the tests run this beside the whole suite on two cores.
    local deadline=$((SECONDS + 180))
    while ((SECONDS < deadline)); do
        kill -0 "${pids[-1]}" 2>/dev/null || fail "enclave serve exited: $(tail -5 "$work/serve.log")"
        if [ -f "$attestation_cert" ] && [ -f "$broker_cert" ] \
            && curl -sf --cacert "$attestation_cert" https://127.0.0.1:8080/certs >/dev/null 2>&1 \
            && curl -sf --cacert "$broker_cert" "https://127.0.0.1:8443/importkey?api-version=7.4" >/dev/null 2>&1; then
            ready=1
            break
        fi
        sleep 0.1
    done
    [ -n "$ready" ] || fail "enclave serve did not answer on 8080 and 8443: $(tail -5 "$work/serve.log")"
}
