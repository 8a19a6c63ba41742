#!/usr/bin/env bash
# The clean room main job (issue 13 item 8), as far as its pieces exist: three parties (two banks pooling card
# transactions, an analyst), a contract drafted and signed by all, the clean room enclave signed and served by the
# untrusted host, each owner's data encrypted client-side and uploaded as ciphertext, an enclave that the contract
# does not name refused, a scan showing the host's store holds no plaintext, and a halt by one party.
# Steps whose pieces do not exist yet (key release through the key broker, loading data into the enclave, queries,
# receipts) are listed as pending in the summary, never faked. Everything lives in .build/cleanroom-demo.
# It ends with one summary line and exits non-zero if any step did not behave as stated.
set -euo pipefail
cd "$(dirname "$0")/.."

work=.build/cleanroom-demo
rm -rf "$work"
mkdir -p "$work"
log="$work/build.log"
: >"$log"
started=$SECONDS
pending="key release through the key broker and loading data into the enclave with it (the host and enclave side exist: POST /datasets/NAME/load), approved and unapproved queries, receipts"

done_steps=()
step="building"
pids=()
summary() {
    local status=$? elapsed=$((SECONDS - started))
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    local took="$((elapsed / 60))m$((elapsed % 60))s"
    local shown="${done_steps[*]:-nothing}"
    shown="${shown// /, }"
    shown="${shown//_/ }"
    if [ "$status" -eq 0 ]; then
        echo "cleanroom.sh: OK in $took — ${shown}; pending (not built yet): ${pending}."
    else
        echo "cleanroom.sh: FAILED while $step (exit $status) after $took — shown before that: ${shown}." >&2
    fi
}
trap summary EXIT

fail() {
    echo "cleanroom.sh: $*" >&2
    exit 1
}

# SwiftPM's progress, compacted (each module once as it starts compiling; a line every 15 s while nothing new
# starts), so a cold build is seen to move. Full output: $log.
progress() {
    local line counter verb module last_print=$SECONDS
    declare -A seen=()
    while IFS= read -r line; do
        printf '%s\n' "$line" >>"$log"
        case "$line" in
        \[*/*\]\ Compiling\ * | \[*/*\]\ Linking\ *)
            read -r counter verb module _ <<<"$line"
            case "$module" in *.c | *.cc | *.cpp | *.S) module="C sources" ;; esac
            if [ -z "${seen[$module]:-}" ]; then
                seen[$module]=1
                printf '    %s %s %s\n' "$counter" "$verb" "$module"
                last_print=$SECONDS
            elif ((SECONDS - last_print >= 15)); then
                printf '    %s still compiling %s, %ss so far\n' "$counter" "$module" "$((SECONDS - started))"
                last_print=$SECONDS
            fi
            ;;
        *error:* | *"Build complete"*) printf '    %s\n' "$line" ;;
        esac
    done
}

echo "==> building the enclave CLI and the clean room enclave"
for product in enclave CleanRoomEnclave; do
    swift build --product "$product" 2>&1 | progress
    [ "${PIPESTATUS[0]}" -eq 0 ] || fail "the build of $product failed (see $log)"
done
bin=$(swift build --show-bin-path)
cli="$bin/enclave"
done_steps+=(built)

step="signing the clean room enclave"
cat >"$work/config.json" <<'JSON'
{ "productID": 1, "securityVersion": 1, "debug": false, "maxThreads": 4, "maxMemory": "1GiB" }
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
cat >"$work/spec.json" <<JSON
{
  "version": 1,
  "name": "shared fraud patterns",
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
    {"id": "shared-by-merchant", "runners": ["analyst"], "reads": ["a_tx", "b_tx"], "computed": ["n"],
     "parameters": [{"name": "min_amount", "type": "integer"}],
     "sql": "SELECT a.merchant AS merchant, COUNT(*) AS n, COUNT(DISTINCT a.card) AS _ids_a_tx, COUNT(DISTINCT b.card) AS _ids_b_tx FROM a_tx a JOIN b_tx b ON a.card = b.card WHERE a.amount >= :min_amount GROUP BY a.merchant"}
  ],
  "outputRules": [
    {"owner": "bank-a", "minIdentities": 3, "neverOutput": ["a_tx.card"]},
    {"owner": "bank-b", "minIdentities": 2, "neverOutput": ["b_tx.card"]}
  ],
  "recipients": [{"party": "analyst", "key": "$(cat "$work/analyst.x25519.pub")"}],
  "enclave": {"signerID": "$signer", "productID": 1, "minSecurityVersion": 1}
}
JSON
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

# serve NAME ENCLAVE: start a host in the background; sets $url and $cacert.
serve() {
    local name=$1 enclave=$2
    "$cli" cleanroom serve --port 0 --data-dir "$work/$name" --enclave "$enclave" \
        --contract "$work/contract.json" >"$work/$name.log" 2>&1 &
    pids+=($!)
    url=""
    for _ in $(seq 1 300); do
        url=$(grep -oE 'https://127\.0\.0\.1:[0-9]+/' "$work/$name.log" | head -1 || true)
        [ -n "$url" ] && break
        kill -0 "${pids[-1]}" 2>/dev/null || fail "the $name host exited: $(tail -5 "$work/$name.log")"
        sleep 0.1
    done
    [ -n "$url" ] || fail "the $name host did not start: $(tail -5 "$work/$name.log")"
    cacert="$work/$name/tls/certificate.pem"
}
# call METHOD PATH [FILE]: prints the body, then the status on the last line.
call() {
    local method=$1 path=$2 file=${3:-}
    if [ -n "$file" ]; then
        curl -sS --cacert "$cacert" -X "$method" --data-binary "@$file" -w '\n%{http_code}' "${url%/}$path"
    else
        curl -sS --cacert "$cacert" -X "$method" -w '\n%{http_code}' "${url%/}$path"
    fi
}
expect_status() {
    local answer=$1 want=$2 what=$3
    [ "$(tail -n1 <<<"$answer")" = "$want" ] || fail "$what: expected HTTP $want, got: $answer"
}

step="serving the clean room"
echo "==> the untrusted host, with the contract's clean room enclave"
serve host "$work/CleanRoomEnclave"
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

step="encrypting and uploading the data"
marker="4000-0000-PLAINTEXT-$RANDOM$RANDOM"
python3 - "$work" "$marker" <<'PY'
import random, sys
work, marker = sys.argv[1], sys.argv[2]
random.seed(13)
merchants = ["coffee", "books", "fuel", "grocer", "travel"]
cards = [f"card-{i:04d}" for i in range(60)]
for name, share in (("a", 0), ("b", 20)):
    with open(f"{work}/{name}_tx.csv", "w") as out:
        out.write("card,merchant,amount\n")
        for i in range(400):
            card = cards[(i * 7 + share) % len(cards)]
            out.write(f"{card},{random.choice(merchants)},{random.randint(1, 500)}\n")
        out.write(f"{marker},coffee,42\n")
PY
for owner in a b; do
    # Each owner's data key stays with the owner (until the key broker releases it to the attested clean room).
    head -c 32 /dev/urandom >"$work/${owner}_tx.key"
    "$cli" cleanroom encrypt --key-file "$work/${owner}_tx.key" --contract "$work/contract.json" \
        --data-set "${owner}_tx" "$work/${owner}_tx.csv" "$work/${owner}_tx.ecr" >/dev/null
    answer=$(call PUT "/datasets/${owner}_tx" "$work/${owner}_tx.ecr")
    expect_status "$answer" 200 "upload of ${owner}_tx"
done
answer=$(call PUT /datasets/b_tx "$work/a_tx.ecr")
expect_status "$answer" 400 "bank-a's file uploaded as b_tx"
grep -q '"code":"wrongContract"' <<<"$answer" || fail "a misnamed data set was not refused by name: $answer"
done_steps+=(both_data_sets_uploaded_as_ciphertext)

step="scanning the host's store"
if grep -rqaF "$marker" "$work/host"; then fail "the host's store holds a plaintext row"; fi
grep -rqaF "$contract_id" "$work/host" || fail "the scan finds nothing at all (the contract ID should be stored)"
echo "==> the host's store (SQLite, data set files) holds no plaintext row"
done_steps+=(no_plaintext_in_the_host_store)

step="checking the status page"
headers=$(curl -sS --cacert "$cacert" -D - -o "$work/status.html" "$url")
grep -qi "^content-security-policy: default-src 'none'" <<<"$headers" || fail "the status page has no CSP"
grep -q "$contract_id" "$work/status.html" || fail "the status page does not show the contract ID"
done_steps+=(status_page_served)

step="refusing an enclave the contract does not name"
echo "==> the same code signed by another signer, under the same contract"
host_url=$url host_cacert=$cacert
serve rogue "$work/rogue/CleanRoomEnclave"
for party in bank-a bank-b analyst; do call POST /signatures "$work/$party.sig.json" >/dev/null; done
answer=$(call GET /attestation)
expect_status "$answer" 409 "the rogue clean room's evidence"
grep -q "enclaveMismatch" <<<"$answer" || fail "the rogue enclave was not refused for its identity: $answer"
echo "==> refused, as expected: $(grep -oE 'enclaveMismatch: [^"]*' <<<"$answer" | head -1)"
url=$host_url cacert=$host_cacert
done_steps+=(wrong_enclave_refused)

step="halting"
"$cli" cleanroom contract halt "$work/contract.json" --party bank-b --key "$work/bank-b.pem" \
    --reason "demo: bank-b withdraws" --out "$work/halt.json" >/dev/null
answer=$(call POST /halts "$work/halt.json")
expect_status "$answer" 200 "bank-b's halt"
answer=$(call GET /status)
grep -q '"phase":"halted"' <<<"$answer" || fail "the clean room is not halted: $answer"
answer=$(call PUT /datasets/a_tx "$work/a_tx.ecr")
expect_status "$answer" 409 "an upload after the halt"
done_steps+=(halted_by_bank-b)
step="done"
