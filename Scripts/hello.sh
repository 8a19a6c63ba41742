#!/usr/bin/env bash
# The main job: build the hello sample, make a signing key, sign the enclave, greet from inside it, then attest it
# to an attestation service started in process and verify the token as a relying party would.
# Everything it creates lives in .build/hello-demo; nothing needs to be set up by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

work=.build/hello-demo
mkdir -p "$work"

echo "==> building (debug)"
swift build --product enclave >/dev/null
swift build --product HelloEnclave >/dev/null
swift build --product HelloHost >/dev/null
bin=$(swift build --show-bin-path)

cat > "$work/config.json" <<'JSON'
{ "productID": 1, "securityVersion": 1, "debug": false, "maxThreads": 4, "maxMemory": "1GiB" }
JSON
[ -f "$work/signer.pem" ] || "$bin/enclave" keygen --out "$work/signer.pem" --public-out "$work/signer.pub.pem" >/dev/null

echo "==> signing HelloEnclave"
cp "$bin/HelloEnclave" "$work/HelloEnclave"
"$bin/enclave" sign --key "$work/signer.pem" --config "$work/config.json" "$work/HelloEnclave" >/dev/null
"$bin/enclave" dump "$work/HelloEnclave"

echo "==> running HelloHost"
printf 'Ada\nGrace\nAlan\n' | "$bin/HelloHost" --enclave "$work/HelloEnclave" --verbose

echo "==> remote attestation: service in process, challenge, enclave key in the evidence, token, relying party"
"$bin/HelloHost" --enclave "$work/HelloEnclave" --attest --data-dir "$work/attestation"
