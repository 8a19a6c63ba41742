#!/usr/bin/env bash
# Samples/SecretProcessing end to end (issue 12 item 9), in simulation, on embedded defaults: `enclave serve` (the
# attestation service on :8080 and the key broker on :8443, SQLite) in the background; a data owner creates a key in
# the broker whose release policy names the enclave's signer, product, minimum security version and not debug, and
# encrypts a CSV file with `enclave keys encrypt`; SecretProcessingHost loads the enclave, which attests, gets the key
# released, decrypts the file inside, computes count/mean/min/max per column and encrypts them back under the owner's
# key; the owner decrypts the result. The same enclave signed by another key is refused by the broker by name, and
# the broker's audit log shows both decisions. The host carries only opaque bytes. Everything lives in
# .build/secret-processing-demo.
# It exits 0 only when both the release and the refusal happened, and ends with one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."

# progress (compacted build output), start_services (`enclave serve` in the background, waited for), fail, and the
# summary line on exit.
source Scripts/lib/demo.sh
demo_setup secret-processing.sh .build/secret-processing-demo

echo "==> building the enclave CLI, the key broker enclave, SecretProcessingEnclave and SecretProcessingHost (debug)"
echo "    A first build compiles about 150 modules: roughly 10 minutes on 2 idle cores. Later runs take seconds."
echo "    The full build output goes to $log."
for product in enclave KeyBrokerEnclave SecretProcessingEnclave SecretProcessingHost; do
    swift build --product "$product" 2>&1 | progress
    [ "${PIPESTATUS[0]}" -eq 0 ] || fail "the build of $product failed (errors: $(grep -E 'error:' "$log" | sort -u | head -5); see $log)"
done
bin=$(swift build --show-bin-path)
cli="$bin/enclave"
done_steps+=(built)

# Every service's data directory (attestation service, key broker) under the demo directory.
export XDG_DATA_HOME="$PWD/$work/xdg"
attestation_cert="$XDG_DATA_HOME/enclavekit/attestation/tls/certificate.pem"
broker_cert="$XDG_DATA_HOME/enclavekit/keybroker/tls/certificate.pem"

step="starting the attestation service and the key broker"
echo "==> enclave serve: the attestation service (:8080) and the key broker (:8443), SQLite, in the background"
start_services
done_steps+=(attestation_service_and_key_broker_up)

step="signing the enclave twice"
# Product 4: one product ID per enclave code under a signer; the owner's release policy pins it.
cat >"$work/config.json" <<'JSON'
{ "productID": 4, "securityVersion": 2, "debug": false, "maxThreads": 4, "maxMemory": "1GiB" }
JSON
sign() { # sign NAME: a copy of the enclave in $work/NAME, signed with a fresh key; prints the signer ID
    mkdir -p "$work/$1"
    "$cli" keygen --out "$work/$1/signer.pem" --public-out "$work/$1/signer.pub.pem" >/dev/null
    cp "$bin/SecretProcessingEnclave" "$work/$1/SecretProcessingEnclave"
    "$cli" sign --key "$work/$1/signer.pem" --config "$work/config.json" "$work/$1/SecretProcessingEnclave" \
        | sed -n 's/^signerID: //p'
}
signer=$(sign enclave)
rogue_signer=$(sign rogue)
[ ${#signer} -eq 64 ] && [ ${#rogue_signer} -eq 64 ] || fail "enclave sign printed no signer ID"
echo "==> signed SecretProcessingEnclave: the developer's signer $signer, and a copy by another signer $rogue_signer"
done_steps+=(enclave_signed)

step="creating the owner's key with a release policy"
cat >"$work/policy.json" <<JSON
{"version":"1.0.0","anyOf":[{"authority":"https://127.0.0.1:8080","allOf":[
  {"claim":"x-ms-sgx-mrsigner","equals":"$signer"},
  {"claim":"x-ms-sgx-product-id","equals":4},
  {"claim":"x-ms-sgx-svn","greaterOrEquals":2},
  {"claim":"x-ms-sgx-is-debuggable","equals":false}]}]}
JSON
echo "==> the owner creates key owner-data (EC P-256) in the broker, exportable only to signer ${signer:0:16}…, product 4, SVN >= 2, not debug"
"$cli" keys create owner-data --kty EC --curve P-256 --policy "$work/policy.json" --immutable >"$work/key.json"
grep -q '"exportable" : true' "$work/key.json" || fail "the key is not exportable: $(cat "$work/key.json")"
done_steps+=(key_created_with_a_release_policy)

step="encrypting the owner's file"
{
    echo "patient,age,systolic,diastolic,cholesterol"
    for i in $(seq 1 200); do
        echo "p$i,$((30 + (i * 7) % 50)),$((110 + (i * 13) % 45)),$((70 + (i * 11) % 25)),$((150 + (i * 17) % 110))"
    done
} >"$work/readings.csv"
"$cli" keys encrypt --key owner-data "$work/readings.csv" "$work/readings.ekev"
if grep -q "patient" "$work/readings.ekev"; then fail "the encrypted file holds plaintext"; fi
done_steps+=(file_encrypted_by_the_owner)

step="checking the broker's evidence"
echo "==> the owner checks the broker enclave's evidence and pins its release signing certificate (keys verify-broker)"
"$cli" keys verify-broker --signing-cert-out "$work/broker-signing.pem" | sed 's/^/    /'
done_steps+=(broker_evidence_checked)

step="processing in the enclave"
echo "==> SecretProcessingHost: the enclave attests, gets owner-data released, decrypts, computes, re-encrypts"
"$bin/SecretProcessingHost" --enclave "$work/enclave/SecretProcessingEnclave" --key owner-data \
    --broker-signing-cert "$work/broker-signing.pem" \
    "$work/readings.ekev" "$work/statistics.ekev" | tee "$work/host.txt"
grep -q '^==> released: ' "$work/host.txt" || fail "the enclave did not get the key released"
if grep -q "patient" "$work/statistics.ekev"; then fail "the result holds plaintext"; fi
done_steps+=(key_released_to_the_policy\'s_enclave)

step="decrypting the result as the owner"
"$cli" keys decrypt --key owner-data "$work/statistics.ekev" "$work/statistics.csv" >/dev/null
echo "==> the owner decrypts the result (keys decrypt):"
sed 's/^/    /' "$work/statistics.csv"
grep -q '^age,200,' "$work/statistics.csv" || fail "the statistics do not cover 200 rows"
grep -q '^patient,0,,,$' "$work/statistics.csv" || fail "the text column was not recognised"
done_steps+=(statistics_decrypted_by_the_owner)

step="running the enclave of another signer"
echo "==> the same enclave signed by another key asks for the key"
set +e
"$bin/SecretProcessingHost" --enclave "$work/rogue/SecretProcessingEnclave" --key owner-data \
    --broker-signing-cert "$work/broker-signing.pem" \
    "$work/readings.ekev" "$work/rogue.ekev" | tee "$work/rogue.txt"
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 3 ] || fail "the rogue enclave was not refused by the broker (exit $status)"
grep -q 'PolicyNotSatisfied' "$work/rogue.txt" || fail "the refusal does not name the failed policy"
[ ! -e "$work/rogue.ekev" ] || fail "the rogue enclave wrote a result"
done_steps+=(another_signer_refused_\(PolicyNotSatisfied\))

step="reading the broker's audit log"
"$cli" keys audit --top 20 >"$work/audit.json"
python3 - "$work/audit.json" "$rogue_signer" <<'PY'
import json, sys
log = json.load(open(sys.argv[1]))["value"]
releases = [r for r in log if r["operation"] == "release" and r.get("key") == "owner-data"]
granted = [r for r in releases if r["result"] == "granted"]
refused = [r for r in releases if r["result"] == "refused"]
assert granted and refused, releases
assert sys.argv[2] in (refused[0].get("claims") or ""), refused[0]
print(f"==> audit: {len(granted)} release granted, {len(refused)} refused ({refused[0]['reason'][:60]}…)")
PY
done_steps+=(both_decisions_audited)
step="done"
