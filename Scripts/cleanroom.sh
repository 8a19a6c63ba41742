#!/usr/bin/env bash
# The clean room main job (issue 13 item 8): two banks pool card transactions to count shared fraud patterns, an
# analyst asks. All in simulation, on embedded defaults, in one process tree: `enclave serve` (attestation service
# and key broker, SQLite) in the background and `enclave cleanroom serve` (the untrusted host and the clean room
# enclave). A contract drafted and signed by all three; each bank encrypts its data client-side under a fresh key it
# imports into the key broker (checking the broker's evidence first), exportable only to the contract's clean room;
# the host gets each key released to the attested clean room and loads the data; an approved query is answered with
# small groups suppressed (its state counted first by the key broker's rollback counter, shown advancing; the owners'
# keys are released only to a clean room bound to that counter's key); an unapproved query, a non-owner's upload, a clean room opened under a contract one byte
# away and an enclave of another signer are refused by name; the receipt is verified offline and the result opened
# by the analyst; a scan shows the host's store holds no plaintext value. Everything lives in .build/cleanroom-demo.
# It ends with one summary line and exits non-zero if any step did not behave as stated.
set -euo pipefail
cd "$(dirname "$0")/.."

# CLEANROOM_WORK: another directory (the test of this script); CLEANROOM_BIN: products already built (no build).
# progress (compacted build output), start_services (`enclave serve` in the background, waited for), fail, and the
# summary line on exit.
source Scripts/lib/demo.sh
demo_setup cleanroom.sh "${CLEANROOM_WORK:-.build/cleanroom-demo}"

if [ -n "${CLEANROOM_BIN:-}" ]; then
    bin=$CLEANROOM_BIN
    echo "==> using the products in $bin (CLEANROOM_BIN: no build)"
else
    echo "==> building the enclave CLI, the clean room enclave and the key broker enclave"
    for product in enclave CleanRoomEnclave KeyBrokerEnclave; do
        swift build --product "$product" 2>&1 | progress
        [ "${PIPESTATUS[0]}" -eq 0 ] || fail "the build of $product failed (see $log)"
    done
    bin=$(swift build --show-bin-path)
fi
cli="$bin/enclave"
built_after=$((SECONDS - started))
done_steps+=(built)

# Every service's data directory (attestation service, key broker) under the demo directory.
case "$work" in
/*) export XDG_DATA_HOME="$work/xdg" ;;
*) export XDG_DATA_HOME="$PWD/$work/xdg" ;;
esac
attestation_cert="$XDG_DATA_HOME/enclavekit/attestation/tls/certificate.pem"
broker_cert="$XDG_DATA_HOME/enclavekit/keybroker/tls/certificate.pem"

step="starting the attestation service and the key broker"
echo "==> enclave serve: the attestation service (:8080) and the key broker (:8443), SQLite, in the background"
start_services
done_steps+=(attestation_service_and_key_broker_up)

step="signing the clean room enclave"
# Product 2: one product ID per enclave code under a signer (the key broker is 1, Hello 3, SecretProcessing 4).
cat >"$work/config.json" <<'JSON'
{ "productID": 2, "securityVersion": 1, "debug": false, "maxThreads": 4, "maxMemory": "1GiB" }
JSON
"$cli" keygen --out "$work/signer.pem" --public-out "$work/signer.pub.pem" >/dev/null
cp "$bin/CleanRoomEnclave" "$work/CleanRoomEnclave"
"$cli" sign --key "$work/signer.pem" --config "$work/config.json" "$work/CleanRoomEnclave" >/dev/null
signer=$("$cli" dump "$work/CleanRoomEnclave" | awk '/^signerID:/ { print $2; exit }')
[[ "$signer" =~ ^[0-9a-f]{64}$ ]] || fail "no signer ID in enclave dump"
# Another signer's build of the same code: the contract does not name it.
"$cli" keygen --out "$work/rogue.pem" --public-out "$work/rogue.pub.pem" >/dev/null
mkdir -p "$work/rogue"
cp "$bin/CleanRoomEnclave" "$work/rogue/CleanRoomEnclave"
"$cli" sign --key "$work/rogue.pem" --config "$work/config.json" "$work/rogue/CleanRoomEnclave" >/dev/null
done_steps+=(signed_the_clean_room_enclave)

step="drafting the contract"
echo "==> three parties: bank-a and bank-b (data owners), analyst (runs queries, receives results)"
for party in bank-a bank-b analyst; do
    "$cli" cleanroom keygen --out "$work/$party.pem" >"$work/$party.pub"
done
"$cli" cleanroom keygen --recipient --out "$work/analyst.x25519" >"$work/analyst.x25519.pub"
# spec NAME: the contract spec (NAME is the contract's name: one byte changed gives another contract).
spec() {
    cat <<JSON
{
  "version": 1,
  "name": "$1",
  "parties": [
    {"name": "bank-a", "roles": ["dataOwner"], "signingKey": "$(cat "$work/bank-a.pub")"},
    {"name": "bank-b", "roles": ["dataOwner"], "signingKey": "$(cat "$work/bank-b.pub")"},
    {"name": "analyst", "roles": ["analyst", "resultRecipient"], "signingKey": "$(cat "$work/analyst.pub")"}
  ],
  "dataSets": [
    {"name": "a_tx", "owner": "bank-a", "identity": "card", "readable": ["card", "merchant", "amount"],
     "columns": [{"name": "card", "type": "text"}, {"name": "merchant", "type": "text"},
                 {"name": "amount", "type": "integer"}]},
    {"name": "b_tx", "owner": "bank-b", "identity": "card", "readable": ["card", "merchant", "amount"],
     "columns": [{"name": "card", "type": "text"}, {"name": "merchant", "type": "text"},
                 {"name": "amount", "type": "integer"}]}
  ],
  "queries": [
    {"id": "shared-by-merchant", "runners": ["analyst"], "reads": ["a_tx", "b_tx"], "computed": ["cards"],
     "parameters": [{"name": "min_amount", "type": "integer"}],
     "sql": "SELECT a.merchant AS merchant, COUNT(DISTINCT a.card) AS cards, COUNT(DISTINCT a.card) AS _ids_a_tx, COUNT(DISTINCT b.card) AS _ids_b_tx FROM a_tx a JOIN b_tx b ON a.card = b.card AND a.merchant = b.merchant WHERE a.amount >= :min_amount GROUP BY a.merchant"}
  ],
  "outputRules": [
    {"owner": "bank-a", "minIdentities": 3, "neverOutput": ["a_tx.card"]},
    {"owner": "bank-b", "minIdentities": 2, "neverOutput": ["b_tx.card"]}
  ],
  "recipients": [{"party": "analyst", "key": "$(cat "$work/analyst.x25519.pub")"}],
  "enclave": {"signerID": "$signer", "productID": 2, "minSecurityVersion": 1}
}
JSON
}
spec "shared fraud patterns" >"$work/spec.json"
"$cli" cleanroom contract new "$work/spec.json" "$work/contract.json" | tee "$work/contract-id.txt"
contract_id=$(grep -oE '[0-9a-f]{64}' "$work/contract-id.txt" | head -1)
[ -n "$contract_id" ] || fail "contract new printed no contract ID"
done_steps+=(drafted_contract_${contract_id:0:12})

step="signing the contract"
for party in bank-a bank-b analyst; do
    "$cli" cleanroom contract sign "$work/contract.json" --party "$party" --key "$work/$party.pem" \
        --out "$work/$party.sig.json" >/dev/null
done
"$cli" cleanroom contract verify "$work/contract.json" --require-active --signature "$work/bank-a.sig.json" \
    --signature "$work/bank-b.sig.json" --signature "$work/analyst.sig.json" >"$work/verify.txt" 2>&1 \
    || fail "contract verify refused the signed contract: $(cat "$work/verify.txt")"
grep -qi "active" "$work/verify.txt" || fail "contract verify does not say active: $(cat "$work/verify.txt")"
done_steps+=(signed_by_all_three)

# serve NAME ENCLAVE CONTRACT: start a host in the background; sets $url and $cacert.
serve() {
    local name=$1 enclave=$2 contract=$3
    "$cli" cleanroom serve --port 0 --data-dir "$work/$name" --enclave "$enclave" \
        --contract "$contract" >"$work/$name.log" 2>&1 &
    pids+=($!)
    url=""
    # Up to 180 s to print its URL (seconds alone; the tests run this beside the whole suite on two cores).
    local deadline=$((SECONDS + 180))
    while ((SECONDS < deadline)); do
        url=$(grep -oE 'https://127\.0\.0\.1:[0-9]+/' "$work/$name.log" | head -1 || true)
        [ -n "$url" ] && break
        kill -0 "${pids[-1]}" 2>/dev/null || fail "the $name host exited: $(tail -5 "$work/$name.log")"
        sleep 0.1
    done
    [ -n "$url" ] || fail "the $name host did not start: $(tail -5 "$work/$name.log")"
    grep -q "^Key release: " "$work/$name.log" || fail "the $name host has no key release: $(cat "$work/$name.log")"
    cacert="$work/$name/tls/certificate.pem"
}
# call METHOD PATH [FILE [HEADER...]]: prints the body, then the status on the last line.
call() {
    local method=$1 path=$2 file=${3:-}
    shift $(($# < 3 ? $# : 3))
    local args=(-sS --cacert "$cacert" -X "$method" -w '\n%{http_code}')
    [ -n "$file" ] && args+=(--data-binary "@$file")
    local header
    for header in "$@"; do args+=(-H "$header"); done
    curl "${args[@]}" "${url%/}$path"
}
# upload PATH FILE SIGNATURE: PUT an encrypted data set with its owner's signature and the SHA-256 it declares
# (X-Upload-SHA256, the file's own digest: the host checks the signature over it before it reads the body).
upload() {
    call PUT "$1" "$2" "X-Owner-Signature: $(cat "$3")" "X-Upload-SHA256: $(sha256sum "$2" | cut -d' ' -f1)"
}
expect_status() {
    local answer=$1 want=$2 what=$3
    [ "$(tail -n1 <<<"$answer")" = "$want" ] || fail "$what: expected HTTP $want, got: $answer"
}
# json FIELD < body: one field of a JSON answer (dotted path).
json() {
    python3 -c 'import json, sys
value = json.loads(sys.stdin.read())
for part in sys.argv[1].split("."):
    value = value[part]
print(value)' "$1"
}
body() { sed '$d' <<<"$1"; }

step="serving the clean room"
echo "==> the untrusted host, with the contract's clean room enclave"
serve host "$work/CleanRoomEnclave" "$work/contract.json"
for party in bank-a bank-b analyst; do
    answer=$(call POST /signatures "$work/$party.sig.json")
    expect_status "$answer" 200 "$party's signature"
done
grep -q '"phase":"active"' <<<"$answer" || fail "the contract is not active after three signatures: $answer"
answer=$(call GET /attestation)
expect_status "$answer" 200 "the clean room's evidence"
grep -q "\"contractID\":\"$contract_id\"" <<<"$answer" || fail "the evidence does not name the contract: $answer"
echo "==> the clean room enclave opened under contract ${contract_id:0:12}…, its evidence binds the contract ID and its key"
done_steps+=(clean_room_opened_and_attested)

step="generating the banks' transactions"
marker="4000-0000-PLAINTEXT-$RANDOM$RANDOM"
python3 - "$work" "$marker" <<'PY'
import random, sys
work, marker = sys.argv[1], sys.argv[2]
random.seed(13)
common = ["coffee", "books", "fuel", "grocer", "travel"]
shared = [f"4000-1000-0000-{i:04d}" for i in range(60)]  # cards both banks see (fraud rings span banks)
only = {"a": [f"4000-2000-0000-{i:04d}" for i in range(100)], "b": [f"4000-3000-0000-{i:04d}" for i in range(100)]}
for bank in ("a", "b"):
    rows = []
    for i in range(600):
        card = shared[i % 60] if i % 3 == 0 else only[bank][i % 100]
        rows.append((card, common[(i // 3) % len(common)] if i % 3 == 0 else random.choice(common), random.randint(1, 900)))
    # Rare patterns seen by too few cards for the output rules: suppressed, never shown.
    for card in shared[:2]:
        rows.append((card, "casino-royale", 700))
    rows.append((shared[5], "pawn-express", 650))
    if bank == "a":
        rows.append((marker, "coffee", 42))
    with open(f"{work}/{bank}_tx.csv", "w") as out:
        out.write("card,merchant,amount\n")
        for card, merchant, amount in rows:
            out.write(f"{card},{merchant},{amount}\n")
        if bank == "b":
            out.write("4000-3000-0000-9999,fuel,not-a-number\n")  # a bad row: counted, never silently dropped
PY
done_steps+=(transactions_generated)

step="encrypting the data with keys imported into the broker"
for bank in a b; do
    echo "==> bank-$bank encrypts ${bank}_tx.csv under a fresh key, imported into the key broker (evidence checked)"
    "$cli" cleanroom encrypt --key "bank-$bank-tx" --contract "$work/contract.json" --data-set "${bank}_tx" \
        --sign-upload "$work/bank-$bank.pem" "$work/${bank}_tx.csv" "$work/${bank}_tx.ecr" | sed 's/^/    /'
    [ "${PIPESTATUS[0]}" -eq 0 ] || fail "bank-$bank's encryption failed"
done
if ls "$work"/*.key >/dev/null 2>&1; then fail "a data key was written to disk"; fi
done_steps+=(keys_imported_into_the_broker)

step="uploading and loading the data"
for bank in a b; do
    [ "$(cat "$work/${bank}_tx.ecr.sha256")" = "$(sha256sum "$work/${bank}_tx.ecr" | cut -d' ' -f1)" ] ||
        fail "${bank}_tx.ecr.sha256 is not the file's SHA-256"
    answer=$(upload "/datasets/${bank}_tx?key=bank-$bank-tx" "$work/${bank}_tx.ecr" "$work/${bank}_tx.ecr.sig")
    expect_status "$answer" 200 "upload and load of ${bank}_tx"
    rows=$(body "$answer" | json load.rows)
    bad=$(body "$answer" | json load.badRowCount)
    echo "==> ${bank}_tx: key released by the broker to the clean room, $rows rows loaded, $bad bad row(s) counted"
done
[ "$bad" = "1" ] || fail "b_tx's bad row was not counted: $answer"
done_steps+=(keys_released_to_the_clean_room_and_data_loaded)

step="refusing a non-owner's and a tampered upload"
answer=$(upload /datasets/a_tx "$work/a_tx.ecr" "$work/b_tx.ecr.sig")
expect_status "$answer" 400 "a_tx uploaded with bank-b's signature"
grep -q '"code":"uploadSignature"' <<<"$answer" || fail "a non-owner's upload was not refused by name: $answer"
cp "$work/a_tx.ecr" "$work/a_tx.tampered.ecr"
printf '\x00' | dd of="$work/a_tx.tampered.ecr" bs=1 seek=$(($(stat -c %s "$work/a_tx.ecr") - 40)) conv=notrunc 2>/dev/null
answer=$(upload /datasets/a_tx "$work/a_tx.tampered.ecr" "$work/a_tx.ecr.sig")
expect_status "$answer" 400 "a tampered a_tx"
grep -q '"code":"uploadSignature"' <<<"$answer" || fail "a tampered upload was not refused by name: $answer"
# The tampered bytes under the digest the owner signed: the signature verifies, the body's digest does not match.
answer=$(call PUT /datasets/a_tx "$work/a_tx.tampered.ecr" "X-Owner-Signature: $(cat "$work/a_tx.ecr.sig")" \
    "X-Upload-SHA256: $(cat "$work/a_tx.ecr.sha256")")
expect_status "$answer" 400 "a tampered a_tx under the signed digest"
grep -q '"code":"uploadDigest"' <<<"$answer" || fail "a body other than the signed digest was not refused: $answer"
# A client older than the declared digest: refused by name before its body is read.
answer=$(call PUT /datasets/a_tx "$work/a_tx.ecr" "X-Owner-Signature: $(cat "$work/a_tx.ecr.sig")")
expect_status "$answer" 400 "an upload without X-Upload-SHA256"
grep -q '"code":"uploadDigest"' <<<"$answer" || fail "an upload without a declared digest was not refused: $answer"
answer=$(upload /datasets/b_tx "$work/a_tx.ecr" "$work/a_tx.ecr.sig")
expect_status "$answer" 400 "bank-a's file uploaded as b_tx"
grep -q '"code":"uploadSignature"' <<<"$answer" || fail "a misnamed data set was not refused by name: $answer"
echo "==> refused, as expected: a_tx signed by bank-b, a tampered a_tx, a_tx as b_tx (uploadSignature, before the body is read); the tampered a_tx under the signed digest, no declared digest (uploadDigest)"
done_steps+=(non-owner_and_tampered_uploads_refused)

# The clean room's durable state (privacy budget, receipt chain) is counted by the key broker's rollback counter for
# the contract: read it before and after the query (signed answers; the clean room checks them, this only shows them).
counter_value() {
    curl -sS --cacert "$broker_cert" \
        "https://127.0.0.1:8443/counters/$contract_id?nonce=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')&api-version=7.4" \
        | json value
}
step="reading the key broker's rollback counter"
counter_before=$(counter_value) || fail "the key broker serves no rollback counter for the contract"

step="running the approved query"
"$cli" cleanroom query --contract "$work/contract.json" --party analyst --key "$work/analyst.pem" \
    --query shared-by-merchant --param min_amount=integer:100 --out "$work/query.json"
answer=$(call POST /queries "$work/query.json")
expect_status "$answer" 200 "the approved query"
run=$(body "$answer" | json id)
# How many groups were below the minimum never leaves the enclave (it could depend on one card): the answer does not
# say; the result shows the rare merchants absent below.
if grep -qi "suppress" <<<"$answer"; then fail "the answer says something of the suppressed groups: $answer"; fi
echo "==> shared-by-merchant answered (run ${run:0:12}…; groups below the owners' minimum of distinct cards are suppressed, uncounted)"
done_steps+=(approved_query_answered)
step="reading the key broker's rollback counter after the query"
counter_after=$(counter_value) || fail "the key broker's rollback counter did not answer"
[ "$counter_after" -gt "$counter_before" ] \
    || fail "the key broker's rollback counter did not advance with the run ($counter_before -> $counter_after)"
echo "==> the key broker's rollback counter for the contract: $counter_before -> $counter_after (the run's state counted before its result was released)"
done_steps+=(rollback_counter_${counter_before}_to_${counter_after})

step="refusing an unapproved query"
"$cli" cleanroom query --contract "$work/contract.json" --party analyst --key "$work/analyst.pem" \
    --query all-cards --out "$work/unapproved.json"
answer=$(call POST /queries "$work/unapproved.json")
expect_status "$answer" 422 "the unapproved query"
grep -q '"code":"queryNotApproved"' <<<"$answer" || fail "the unapproved query was not refused by name: $answer"
echo "==> refused, as expected: all-cards (queryNotApproved)"
done_steps+=(unapproved_query_refused)

step="verifying the receipt and opening the result"
status=$(curl -sS --cacert "$cacert" -o "$work/receipt.json" -w '%{http_code}' "${url%/}/receipts/$run")
[ "$status" = 200 ] || fail "the receipt: HTTP $status"
"$cli" cleanroom receipt verify "$work/receipt.json" --contract "$work/contract.json" --allow-simulated \
    >"$work/receipt-verify.txt" 2>&1 || fail "the receipt does not verify: $(cat "$work/receipt-verify.txt")"
sed 's/^/    /' "$work/receipt-verify.txt"
status=$(curl -sS --cacert "$cacert" -o "$work/result.json" -w '%{http_code}' "${url%/}/results/$run")
[ "$status" = 200 ] || fail "the result: HTTP $status"
# The result opens only beside its verified receipt, which must name its digest (a result the host made itself, or one
# of an earlier run, is refused: badResult).
"$cli" cleanroom result open "$work/result.json" --receipt "$work/receipt.json" --contract "$work/contract.json" \
    --allow-simulated --party analyst --key "$work/analyst.x25519" --out "$work/result.plain" \
    || fail "the analyst cannot open the result"
echo "==> the analyst's result (merchants where both banks saw at least the minimum of shared cards):"
sed 's/^/    /' "$work/result.plain"
echo
grep -q "coffee" "$work/result.plain" || fail "the result does not hold the common merchants"
if grep -q "casino-royale\|pawn-express" "$work/result.plain"; then fail "a small group was released"; fi
if grep -qi "suppress" "$work/receipt.json"; then fail "the receipt says something of the suppressed groups"; fi
done_steps+=(receipt_verified_and_result_opened)

step="scanning the host's store"
python3 - "$work" "$work/host" <<'PY' || fail "the host's store holds plaintext"
import os, sys
work, store = sys.argv[1], sys.argv[2]
values = set()
for bank in ("a", "b"):
    for line in open(f"{work}/{bank}_tx.csv").read().splitlines()[1:]:
        card, merchant, _ = line.split(",")
        values.add(card)
        values.add(merchant)
needles = [v.encode() for v in values if len(v) >= 5]
hits, scanned = [], 0
for root, _, files in os.walk(store):
    for name in files:
        data = open(os.path.join(root, name), "rb").read()
        scanned += len(data)
        hits += [(name, n.decode()) for n in needles if n in data]
if hits:
    print(f"plaintext found: {hits[:5]}", file=sys.stderr)
    sys.exit(1)
print(f"==> the host's store (SQLite, data set files, {scanned} bytes) holds none of the {len(needles)} card numbers and merchants")
PY
grep -rqaF "$contract_id" "$work/host" || fail "the scan finds nothing at all (the contract ID should be stored)"
done_steps+=(no_plaintext_in_the_host_store)

step="checking the status page"
headers=$(curl -sS --cacert "$cacert" -D - -o "$work/status.html" "$url")
grep -qi "^content-security-policy: default-src 'none'" <<<"$headers" || fail "the status page has no CSP"
grep -q "$contract_id" "$work/status.html" || fail "the status page does not show the contract ID"
done_steps+=(status_page_served)

step="refusing a clean room opened under another contract"
echo "==> the same clean room enclave, opened by another host under a contract one byte away"
host_url=$url host_cacert=$cacert
spec "shared fraud patternz" >"$work/near-spec.json"
"$cli" cleanroom contract new "$work/near-spec.json" "$work/near.json" >/dev/null
for party in bank-a bank-b analyst; do
    "$cli" cleanroom contract sign "$work/near.json" --party "$party" --key "$work/$party.pem" \
        --out "$work/near-$party.sig.json" >/dev/null
done
serve near "$work/CleanRoomEnclave" "$work/near.json"
for party in bank-a bank-b analyst; do call POST /signatures "$work/near-$party.sig.json" >/dev/null; done
head -c 32 /dev/urandom >"$work/near.key"
"$cli" cleanroom encrypt --key-file "$work/near.key" --contract "$work/near.json" --data-set a_tx \
    --sign-upload "$work/bank-a.pem" "$work/a_tx.csv" "$work/near-a_tx.ecr" >/dev/null
answer=$(upload /datasets/a_tx "$work/near-a_tx.ecr" "$work/near-a_tx.ecr.sig")
expect_status "$answer" 200 "the look-alike contract's upload"
answer=$(call POST "/datasets/a_tx/load?key=bank-a-tx")
expect_status "$answer" 403 "bank-a's key for a clean room under another contract"
grep -q '"code":"PolicyNotSatisfied"' <<<"$answer" || fail "the broker did not refuse by policy: $answer"
grep -q 'x-ms-runtime.contract' <<<"$answer" || fail "the refusal does not name the contract claim: $answer"
echo "==> refused by the key broker, as expected: PolicyNotSatisfied (x-ms-runtime.contract)"
done_steps+=(wrong-contract_clean_room_refused)

step="refusing an enclave the contract does not name"
echo "==> the same code signed by another signer, under the contract"
serve rogue "$work/rogue/CleanRoomEnclave" "$work/contract.json"
for party in bank-a bank-b analyst; do call POST /signatures "$work/$party.sig.json" >/dev/null; done
answer=$(call GET /attestation)
expect_status "$answer" 409 "the rogue clean room's evidence"
grep -q "enclaveMismatch" <<<"$answer" || fail "the rogue enclave was not refused for its identity: $answer"
refusal=$answer
answer=$(upload /datasets/a_tx "$work/a_tx.ecr" "$work/a_tx.ecr.sig")
expect_status "$answer" 200 "the upload to the rogue host"
answer=$(call POST "/datasets/a_tx/load?key=bank-a-tx")
expect_status "$answer" 409 "a key for the rogue enclave"
grep -q '"code":"NotOpen"' <<<"$answer" || fail "the rogue host's load was not refused by name: $answer"
echo "==> refused, as expected: $(grep -oE 'enclaveMismatch: [^"]*' <<<"$refusal" | head -1); no key asked for"
url=$host_url cacert=$host_cacert
done_steps+=(wrong-signer_enclave_refused)

step="halting"
"$cli" cleanroom contract halt "$work/contract.json" --party bank-b --key "$work/bank-b.pem" \
    --reason "demo: bank-b withdraws" --out "$work/halt.json" >/dev/null
answer=$(call POST /halts "$work/halt.json")
expect_status "$answer" 200 "bank-b's halt"
# The enclave acknowledges the halt (signed by its attested receipt key) once it is saved in its sealed state and
# counted by the key broker: a restarted clean room stays halted. No acknowledgement: the halt may never have landed.
body "$answer" | json acknowledgement | python3 -c 'import base64, sys
text = sys.stdin.read().strip()
sys.stdout.buffer.write(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))' >"$work/halt-ack.json" \
    || fail "the clean room did not acknowledge bank-b's halt: $answer"
# verify-halt exits 1 unless the halt was saved and counted; --broker-key: counted by this key broker (the signing
# certificate of its GET /attestation, whose evidence the owners' `cleanroom encrypt` verified), not a counter the
# host chose.
curl -sS --cacert "$broker_cert" "https://127.0.0.1:8443/attestation?api-version=7.4" | json certificate \
    | { echo "-----BEGIN CERTIFICATE-----"; fold -w 64; echo "-----END CERTIFICATE-----"; } >"$work/broker-signing.pem" \
    || fail "the key broker's signing certificate is not available"
"$cli" cleanroom receipt verify-halt "$work/halt-ack.json" --halt "$work/halt.json" --contract "$work/contract.json" \
    --broker-key "$work/broker-signing.pem" --allow-simulated >"$work/halt-verify.txt" 2>&1 \
    || fail "the halt acknowledgement does not verify: $(cat "$work/halt-verify.txt")"
sed 's/^/    /' "$work/halt-verify.txt"
grep -q "durable: saved.*, counted" "$work/halt-verify.txt" \
    || fail "the halt was not saved and counted: $(cat "$work/halt-verify.txt")"
answer=$(call GET /status)
grep -q '"phase":"halted"' <<<"$answer" || fail "the clean room is not halted: $answer"
"$cli" cleanroom query --contract "$work/contract.json" --party analyst --key "$work/analyst.pem" \
    --query shared-by-merchant --param min_amount=integer:100 --out "$work/query-after-halt.json"
answer=$(call POST /queries "$work/query-after-halt.json")
[ "$(tail -n1 <<<"$answer")" != 200 ] || fail "a query ran after the halt: $answer"
echo "==> halted by bank-b: a query is refused ($(grep -oE '"code":"[A-Za-z]+"' <<<"$answer" | head -1))"
done_steps+=(halted_by_bank-b)
step="done"
