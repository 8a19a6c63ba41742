#!/usr/bin/env python3
"""Drive `enclave serve attestation` with Microsoft's own Azure Attestation client.

Uses azure-security-attestation 1.0.0 unchanged (pip install azure-security-attestation==1.0.0 six), with token
validation on (signature, expiry, not-before, issuer), over HTTPS trusting the service's certificate. Prints one JSON
object per call: {"call": NAME, "ok": true, ...details} or {"call": NAME, "ok": false, "status": HTTP status,
"code": the service's error code, "error": text}. The Swift test MicrosoftClientTests reads them.

Phases:
  aad       the service without policy signers (administrator token): unsigned policies, attestation with and
            without a draft policy.
  isolated  the service started with --policy-signer SIGNER: RSA-signed policies, policy management certificates,
            and the attacks (an untrusted signer, a tampered policy, a replayed one, one moved to another type,
            removing the last certificate).
"""

import argparse
import base64
import hashlib
import json
import sys
import time
import traceback

from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.security.attestation import (
    AttestationAdministrationClient,
    AttestationClient,
    AttestationType,
)
from azure.security.attestation._models import AttestationPolicyToken
from cryptography import x509
from cryptography.hazmat.primitives import serialization

POLICY = """version=1.0;
authorizationrules { => permit(); };
issuancerules { c:[type=="x-ms-sgx-mrenclave"] => issue(type="checked-by", value="microsoft-client"); };"""
SIGNED_POLICY = """version=1.0;
authorizationrules { => permit(); };
issuancerules { c:[type=="x-ms-sgx-mrsigner"] => issue(type="signed-policy", value=true); };"""
DRAFT_POLICY = """version=1.0;
authorizationrules { => permit(); };
issuancerules { => issue(type="draft", value=true); };"""


class StaticCredential:
    """The bearer token azure-core sends (the administrator token, or anything for signed requests)."""

    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self.token, int(time.time()) + 3600)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def maa_policy_hash(text):
    """MAA's x-ms-policy-hash: SHA-256 of BASE64URL(UTF-8 policy text)."""
    return hashlib.sha256(b64url(text.encode()).encode()).digest()


def emit(call, ok, **details):
    print(json.dumps(dict(call=call, ok=ok, **details), sort_keys=True, default=str), flush=True)


def run(call, function, check=None):
    """Run one client call; a failed check or an exception is reported, never raised."""
    try:
        value = function()
        details = check(value) if check else {}
        emit(call, True, **(details or {}))
        return value
    except HttpResponseError as error:
        code = getattr(getattr(error, "error", None), "code", None)
        if code is None:
            try:
                code = json.loads(error.response.text())["error"]["code"]
            except Exception:  # noqa: BLE001 - the body is the service's, report whatever it was
                pass
        emit(call, False, status=error.status_code, code=code, error=str(error)[:300])
    except Exception as error:  # noqa: BLE001 - every failure is reported as data
        emit(call, False, error="%s: %s" % (type(error).__name__, error), trace=traceback.format_exc()[-600:])
    return None


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def clients(args, token, **admin_options):
    options = dict(
        connection_verify=args.ca,
        validate_token=True,
        validate_signature=True,
        validate_expiration=True,
        validate_issuer=True,
        issuer=args.endpoint,
    )
    credential = StaticCredential(token)
    return (
        AttestationClient(args.endpoint, credential, **options),
        AttestationAdministrationClient(args.endpoint, credential, **options, **admin_options),
    )


def oe_report(quote):
    # Open Enclave's remote report: header (version 1, type 2 = remote, size) then the SGX quote.
    return (1).to_bytes(4, "little") + (2).to_bytes(4, "little") + len(quote).to_bytes(8, "little") + quote


def attestation_calls(client, quote, policy_text):
    run(
        "attest_sgx_enclave",
        lambda: client.attest_sgx_enclave(quote),
        lambda result: (
            expect(result[0].mr_enclave, "no mr_enclave"),
            expect(result[1].algorithm == "RS256", "token alg %s" % result[1].algorithm),
            expect(result[0].policy_hash == maa_policy_hash(policy_text), "policy hash differs from MAA's"),
            {"mrenclave": result[0].mr_enclave, "claims": result[0].policy_claims},
        )[-1],
    )
    run(
        "attest_sgx_enclave_draft",
        lambda: client.attest_sgx_enclave(quote, draft_policy=DRAFT_POLICY),
        lambda result: (
            expect(result[1].algorithm == "none", "a draft token is unsigned"),
            expect(result[0].policy_hash == maa_policy_hash(DRAFT_POLICY), "draft policy hash differs"),
            {"claims": result[0].policy_claims},
        )[-1],
    )
    run(
        "attest_open_enclave",
        lambda: client.attest_open_enclave(oe_report(quote)),
        lambda result: (expect(result[0].mr_enclave, "no mr_enclave"), {"mrenclave": result[0].mr_enclave})[-1],
    )
    run(
        "attest_open_enclave_draft",
        lambda: client.attest_open_enclave(oe_report(quote), draft_policy=DRAFT_POLICY),
        lambda result: (expect(result[1].algorithm == "none", "a draft token is unsigned"), {})[-1],
    )


def metadata_calls(client):
    run(
        "get_open_id_metadata",
        client.get_open_id_metadata,
        lambda metadata: (expect(metadata["issuer"], "no issuer"), {"issuer": metadata["issuer"]})[-1],
    )
    run(
        "get_signing_certificates",
        client.get_signing_certificates,
        lambda signers: (
            expect(signers and signers[0].certificates, "no signing certificate"),
            {"count": len(signers)},
        )[-1],
    )


def aad(args):
    client, admin = clients(args, read(args.admin_token).decode().strip())
    quote = read(args.sgx_quote)
    metadata_calls(client)
    run(
        "get_policy_default",
        lambda: admin.get_policy(AttestationType.SGX_ENCLAVE),
        lambda result: (expect("permit" in result[0], "default policy: %r" % result[0]), {})[-1],
    )
    expected = hashlib.sha256(AttestationPolicyToken(POLICY).to_jwt_string().encode()).digest()
    run(
        "set_policy_unsigned",
        lambda: admin.set_policy(AttestationType.SGX_ENCLAVE, POLICY),
        lambda result: (
            expect(str(result[0].policy_resolution) in ("Updated", "PolicyModification.UPDATED"), "not Updated"),
            expect(result[0].policy_token_hash == expected, "token hash differs"),
            expect(result[0].policy_signer is None, "an unsigned policy has no signer"),
            {},
        )[-1],
    )
    run(
        "get_policy_unsigned",
        lambda: admin.get_policy(AttestationType.SGX_ENCLAVE),
        lambda result: (expect(result[0] == POLICY, "policy read back differs: %r" % result[0]), {})[-1],
    )
    attestation_calls(client, quote, POLICY)
    run(
        "reset_policy_unsigned",
        lambda: admin.reset_policy(AttestationType.SGX_ENCLAVE),
        lambda result: (expect(str(result[0].policy_resolution) in ("Removed", "PolicyModification.REMOVED"), "x"), {})[
            -1
        ],
    )
    run(
        "get_policy_management_certificates_none",
        admin.get_policy_management_certificates,
        lambda result: (expect(result[0] == [], "no certificates without signers"), {})[-1],
    )
    # Without the administrator token, nothing changes.
    _, anonymous = clients(args, "not-the-admin-token")
    run("set_policy_wrong_admin_token", lambda: anonymous.set_policy(AttestationType.SGX_ENCLAVE, DRAFT_POLICY))


def pem(path):
    return read(path).decode()


def der_of(certificate_pem):
    return x509.load_pem_x509_certificate(certificate_pem.encode()).public_bytes(serialization.Encoding.DER)


def isolated(args):
    signer_key, signer_cert = pem(args.signer_key), pem(args.signer_cert)
    second_key, second_cert = pem(args.second_key), pem(args.second_cert)
    stranger_key, stranger_cert = pem(args.stranger_key), pem(args.stranger_cert)
    client, admin = clients(args, "unused", signing_key=signer_key, signing_certificate=signer_cert)
    quote = read(args.sgx_quote)
    metadata_calls(client)
    run(
        "get_policy_management_certificates",
        admin.get_policy_management_certificates,
        lambda result: (
            expect(len(result[0]) == 1, "one certificate: %d" % len(result[0])),
            expect(der_of(result[0][0][0]) == der_of(signer_cert), "not the signer"),
            {},
        )[-1],
    )
    jws = AttestationPolicyToken(SIGNED_POLICY, signing_key=signer_key, signing_certificate=signer_cert)
    run(
        "set_policy_signed",
        lambda: admin.set_policy(AttestationType.SGX_ENCLAVE, SIGNED_POLICY),
        lambda result: (
            expect(str(result[0].policy_resolution) in ("Updated", "PolicyModification.UPDATED"), "not Updated"),
            expect(result[0].policy_token_hash == hashlib.sha256(jws.to_jwt_string().encode()).digest(), "hash"),
            expect(der_of(result[0].policy_signer.certificates[0]) == der_of(signer_cert), "signer differs"),
            {},
        )[-1],
    )
    run(
        "get_policy_signed",
        lambda: admin.get_policy(AttestationType.SGX_ENCLAVE),
        lambda result: (
            expect(result[0] == SIGNED_POLICY, "policy read back differs"),
            expect(result[1]._get_body().policy == jws.to_jwt_string(), "x-ms-policy is not the signed JWS"),
            {},
        )[-1],
    )
    attestation_calls(client, quote, SIGNED_POLICY)

    # Attacks: each must be refused by the service, and the policy must stay SIGNED_POLICY.
    _, stranger = clients(args, "unused", signing_key=stranger_key, signing_certificate=stranger_cert)
    run("set_policy_untrusted_signer", lambda: stranger.set_policy(AttestationType.SGX_ENCLAVE, DRAFT_POLICY))
    header, payload, signature = jws.to_jwt_string().split(".")
    tampered = ".".join(
        [header, b64url(json.dumps({"AttestationPolicy": b64url(DRAFT_POLICY.encode())}).encode()), signature]
    )
    run(
        "set_policy_tampered",
        lambda: admin._client.policy.set(attestation_type="SgxEnclave", new_attestation_policy=tampered),
    )
    run("set_policy_replayed", lambda: admin.set_policy(AttestationType.SGX_ENCLAVE, SIGNED_POLICY))
    run(
        "set_policy_moved_to_another_type",
        lambda: admin._client.policy.set(attestation_type="OpenEnclave", new_attestation_policy=jws.to_jwt_string()),
    )
    run(
        "get_policy_after_attacks",
        lambda: admin.get_policy(AttestationType.SGX_ENCLAVE),
        lambda result: (expect(result[0] == SIGNED_POLICY, "an attack changed the policy"), {})[-1],
    )
    run(
        "get_policy_other_type_after_attacks",
        lambda: admin.get_policy(AttestationType.OPEN_ENCLAVE),
        lambda result: (expect(result[0] != SIGNED_POLICY, "the request moved to OpenEnclave"), {})[-1],
    )
    run(
        "add_policy_management_certificate_untrusted",
        lambda: stranger.add_policy_management_certificate(stranger_cert),
    )

    thumbprint = hashlib.sha1(der_of(second_cert)).hexdigest().upper()
    run(
        "add_policy_management_certificate",
        lambda: admin.add_policy_management_certificate(second_cert),
        lambda result: (
            expect(result[0].certificate_resolution == "IsPresent", "not IsPresent"),
            expect(result[0].certificate_thumbprint.upper() == thumbprint, "thumbprint differs"),
            {},
        )[-1],
    )
    run(
        "get_policy_management_certificates_two",
        admin.get_policy_management_certificates,
        lambda result: (expect(len(result[0]) == 2, "two certificates: %d" % len(result[0])), {})[-1],
    )
    _, second = clients(args, "unused", signing_key=second_key, signing_certificate=second_cert)
    run(
        "remove_policy_management_certificate",
        lambda: second.remove_policy_management_certificate(signer_cert),
        lambda result: (expect(result[0].certificate_resolution == "IsAbsent", "not IsAbsent"), {})[-1],
    )
    run("set_policy_removed_signer", lambda: admin.set_policy(AttestationType.SGX_ENCLAVE, POLICY))
    run("remove_policy_management_certificate_last", lambda: second.remove_policy_management_certificate(second_cert))
    run(
        "reset_policy_signed",
        lambda: second.reset_policy(AttestationType.SGX_ENCLAVE),
        lambda result: (
            expect(str(result[0].policy_resolution) in ("Removed", "PolicyModification.REMOVED"), "not Removed"),
            expect(der_of(result[0].policy_signer.certificates[0]) == der_of(second_cert), "signer differs"),
            {},
        )[-1],
    )
    run(
        "get_policy_management_certificates_after",
        admin.get_policy_management_certificates,
        lambda result: (
            expect([der_of(chain[0]) for chain in result[0]] == [der_of(second_cert)], "only the second remains"),
            {},
        )[-1],
    )


def keys(args):
    """Write RSA policy signer keys and self-signed certificates (as MAA's samples make them) to --out."""
    import datetime

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    for name in ("signer", "second", "stranger"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EnclaveKit test policy %s" % name)])
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        with open("%s/%s-key.pem" % (args.out, name), "wb") as handle:
            handle.write(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
        with open("%s/%s-cert.pem" % (args.out, name), "wb") as handle:
            handle.write(certificate.public_bytes(serialization.Encoding.PEM))
    emit("keys", True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("phase", choices=["keys", "aad", "isolated"])
    parser.add_argument("--out", help="keys: the directory to write keys and certificates to")
    parser.add_argument("--endpoint")
    parser.add_argument("--ca", help="the service's TLS certificate (PEM) to trust")
    parser.add_argument("--sgx-quote")
    parser.add_argument("--admin-token")
    for name in ("signer", "second", "stranger"):
        parser.add_argument("--%s-key" % name)
        parser.add_argument("--%s-cert" % name)
    args = parser.parse_args()
    {"keys": keys, "aad": aad, "isolated": isolated}[args.phase](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
