internal import Crypto
internal import Foundation
internal import SwiftASN1
@_spi(FixedExpiryValidationTime) internal import X509

extension DCAPQuote {
    /// The common name of Intel's TCB Signing certificate, which signs TCB info and QE identities.
    static let tcbSigningCommonName = "Intel SGX TCB Signing"

    /// Check that `bytes` carry `signature` (raw r‖s, P-256) by the leaf of `chain`, and that the leaf is Intel's
    /// TCB Signing certificate: issued directly by one of `roots`, named `CN=Intel SGX TCB Signing`, an end entity
    /// whose key usage is digital signature, and not listed on `rootCRL`. Any other certificate under the root (a
    /// PCK certificate, say) does not speak for Intel's TCB.
    static func checkSigned(
        _ bytes: [UInt8],
        signature: [UInt8],
        chain: [Certificate],
        roots: [Certificate],
        rootCRL: CertificateRevocationList,
        at time: Date,
        check: Check,
        chainValidated: Bool = false
    ) async throws {
        guard let leaf = chain.first else { throw VerificationFailure(check: check, reason: "no issuer chain") }
        if !chainValidated {
            guard let path = await validatedPath(chain, roots: roots, at: time) else {
                throw VerificationFailure(
                    check: check,
                    reason: "the signing certificate does not chain to a trust anchor at \(time)"
                )
            }
            SignatureCounter.record(chain.count - 1)  // the issuer chain's path
            try checkTCBSigningRole(path: path, rootCRL: rootCRL, check: check)
        }
        SignatureCounter.record(1)
        guard let key = P256.Signing.PublicKey(leaf.publicKey),
            let parsed = try? P256.Signing.ECDSASignature(rawRepresentation: signature),
            key.isValidSignature(parsed, for: bytes)
        else {
            throw VerificationFailure(check: check, reason: "the signature over the exact bytes does not verify")
        }
    }

    /// The role of Intel's TCB Signing certificate
    /// (see ``checkSigned(_:signature:chain:roots:rootCRL:at:check:chainValidated:)``), on its validated path (leaf
    /// first, anchor last).
    static func checkTCBSigningRole(path: [Certificate], rootCRL: CertificateRevocationList, check: Check) throws {
        let leaf = path[0]
        guard path.count == 2 else {
            throw VerificationFailure(
                check: check,
                reason:
                    "the signing certificate is not issued directly by the root CA (Intel's TCB Signing certificate is)"
            )
        }
        let names = leaf.subject.flatMap { $0 }.filter { $0.type == .RDNAttributeType.commonName }
        guard names.count == 1, names.first.flatMap({ String($0.value) }) == tcbSigningCommonName else {
            throw VerificationFailure(
                check: check,
                reason: "the signing certificate is not Intel's TCB Signing certificate (CN=\(tcbSigningCommonName))"
            )
        }
        // Intel's: key usage digital signature and non-repudiation (critical), basic constraints CA:FALSE (critical).
        guard let usage = try? leaf.extensions.keyUsage, usage.digitalSignature, !usage.keyCertSign, !usage.cRLSign,
            (try? leaf.extensions.basicConstraints) == .notCertificateAuthority
        else {
            throw VerificationFailure(
                check: check,
                reason:
                    "the signing certificate's key usage or basic constraints are not those of a TCB Signing certificate"
            )
        }
        guard rootCRL.issuer == path[1].subject else {
            throw VerificationFailure(check: .crl, reason: "the root CA CRL is not the signing certificate's issuer's")
        }
        if rootCRL.revokes(leaf) {
            throw VerificationFailure(check: .revocation, reason: "the TCB Signing certificate is revoked")
        }
    }
}
