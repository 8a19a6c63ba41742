#!/usr/bin/env bash
# The first sample: build the hello sample, make a signing key, sign the enclave, greet from inside it, then attest it
# to an attestation service started in process and verify the token as a relying party would.
# Everything it creates lives in .build/hello-demo; nothing needs to be set up by hand.
# It ends with one summary line and exits non-zero if any step did not do what it says.
set -euo pipefail
cd "$(dirname "$0")/.."

# progress (SwiftPM's output compacted), fail, and the summary line on exit, shared with the other scripts.
source Scripts/lib/demo.sh
demo_setup hello.sh .build/hello-demo keep

# The hello path needs no PostgreSQL driver: without the default `Postgres` trait, PostgresNIO is not compiled (on a
# fresh clone that saves about 120 s of CPU, an eighth of the build). Switching traits recompiles this package's own
# modules (about 60 s of CPU), so once PostgresNIO is built (`swift build`, `swift test`) the default traits are kept.
traits=(--disable-default-traits)
if compgen -G ".build/debug/PostgresNIO.build/*.o" >/dev/null; then traits=(); fi
build() {
    if ! swift build "${traits[@]}" --product "$1" 2>&1 | progress; then
        echo "==> the build of $1 failed; the errors:" >&2
        grep -E "error:" "$log" | sort -u | head -20 >&2 || true
        echo "    full output: $log" >&2
        return 1
    fi
}

echo "==> building enclave, HelloEnclave and HelloHost (debug)"
echo "    A first build compiles about 150 modules (SwiftNIO, two copies of BoringSSL, SQLite, Hummingbird, …):"
echo "    about 16 CPU-minutes, so roughly 10 minutes on 2 idle cores and longer on a busy machine. Later runs take"
echo "    seconds. The full build output goes to $log."
build enclave
build HelloEnclave
build HelloHost
bin=$(swift build "${traits[@]}" --show-bin-path)
done_steps+=(built)

step="signing"
# Product 3: one product ID per enclave code under a signer (Hello attests data its host chooses; it must never
# share signer and product with an enclave that holds secrets).
cat >"$work/config.json" <<'JSON'
{ "productID": 3, "securityVersion": 1, "debug": false, "maxThreads": 4, "maxMemory": "1GiB" }
JSON
[ -f "$work/signer.pem" ] || "$bin/enclave" keygen --out "$work/signer.pem" --public-out "$work/signer.pub.pem" >/dev/null

echo "==> signing HelloEnclave"
cp "$bin/HelloEnclave" "$work/HelloEnclave"
"$bin/enclave" sign --key "$work/signer.pem" --config "$work/config.json" "$work/HelloEnclave" >/dev/null
"$bin/enclave" dump "$work/HelloEnclave" | tee "$work/dump.txt"
grep -q '^uniqueID:' "$work/dump.txt"
done_steps+=(signed_HelloEnclave)

step="greeting from inside the enclave"
echo "==> running HelloHost"
printf 'Ada\nGrace\nAlan\n' | "$bin/HelloHost" --enclave "$work/HelloEnclave" --verbose | tee "$work/greet.txt"
for name in Ada Grace Alan; do
    grep -q "^Hello, $name! (from enclave" "$work/greet.txt" || {
        echo "no greeting for $name from the enclave" >&2
        exit 1
    }
done
done_steps+=(greeted_3_names_from_inside_it)

step="attesting"
echo "==> remote attestation: service in process, challenge, enclave key in the evidence, token, relying party"
"$bin/HelloHost" --enclave "$work/HelloEnclave" --attest --data-dir "$work/attestation" \
    | sed -u 's/^==> replay refused: /==> replay refused, as expected (a challenge is single-use): /' \
    | tee "$work/attest.txt"
expect() {
    grep -q "$1" "$work/attest.txt" || {
        echo "expected '$1' in HelloHost's output" >&2
        exit 1
    }
}
expect '^==> token: '
done_steps+=(attested_it_for_a_token)
step="verifying the token"
expect "^==> the token carries this exchange's challenge: it is fresh"
expect '^==> the token names this enclave'
done_steps+=(verified_the_token_as_a_relying_party)
step="replaying the evidence"
expect '^==> replay refused, as expected'
done_steps+=(saw_the_replay_refused_as_expected)
step="done"
