internal import Crypto
import Foundation
internal import SwiftASN1
// Validation at a caller-given time (attestation verification is a pure function of its inputs and time).
@_spi(FixedExpiryValidationTime) public import X509

extension DCAPQuote {
    /// A check of DCAP verification, named in failures: one of ``AttestationError``'s codes.
    public typealias Check = AttestationError.Code

    /// Why verification failed: the check and a reason (``AttestationError``, the one error of every verifier).
    public typealias VerificationFailure = AttestationError

    /// The PEM certificates of type-5 certification data, leaf first.
    /// - Throws: ``VerificationFailure`` — ``AttestationError/Code/certificationDataType`` when the certification data
    ///   is not type 5, ``AttestationError/Code/pckChain`` when it is not a PEM chain.
    public func pckChain() throws -> [Certificate] {
        var known = KnownCertificates.intelRoot
        return try pckChain(reusing: &known)
    }

    /// ``pckChain()``, a certificate whose DER bytes equal one in `known` taken from there instead of parsed again.
    func pckChain(reusing known: inout KnownCertificates) throws -> [Certificate] {
        guard certification.type == 5 else {
            throw VerificationFailure(
                check: .certificationDataType,
                reason: "type \(certification.type) is not a PEM chain"
            )
        }
        do {
            // Quote generators end the chain with a NUL.
            // The leaf is this platform's: parsed every time; its issuers are shared by every platform.
            return try PEMCertificates.parse(certification.data.prefix { $0 != 0 }, reusing: &known, sharedFrom: 1)
        } catch {
            throw VerificationFailure(check: .pckChain, reason: "certification data is not a PEM certificate chain")
        }
    }

    /// Verify the cryptographic chain of the quote: the PCK chain up to one of `trustAnchors` at `time`, the QE
    /// report's signature by the PCK key, the QE report data binding the attestation key and authentication data,
    /// and the quote's signature by the attestation key. Collateral (CRLs, TCB info, QE identity) is separate.
    /// - Returns: the validated chain, PCK leaf first, trust anchor last.
    /// - Throws: ``VerificationFailure`` naming the first check that failed.
    /// Internal: on its own it proves nothing about the quoting enclave; ``verifyChainOnly(anchors:at:)`` adds the
    /// pin on Intel's, ``verify(anchors:collateral:at:cache:)`` everything else.
    func verifySignatures(trustAnchors: [Certificate], at time: Date) async throws -> [Certificate] {
        let path = try await validatePCKPath(chain: pckChain(), trustAnchors: trustAnchors, at: time)
        try checkQuoteSignatures(pckLeaf: path[0])
        return path
    }

    /// The PCK chain up to one of `trustAnchors` at `time`; the embedded chain must be exactly that path.
    func validatePCKPath(chain: [Certificate], trustAnchors: [Certificate], at time: Date) async throws -> [Certificate]
    {
        guard !chain.isEmpty else {
            throw VerificationFailure(check: .pckChain, reason: "the chain is empty")
        }
        guard let path = await Self.validatedPath(chain, roots: trustAnchors, at: time) else {
            throw VerificationFailure(
                check: .pckChain,
                reason: "the PCK certificate does not chain to a trust anchor at \(time)"
            )
        }
        SignatureCounter.record(path.count - 1)
        // The embedded chain must be exactly the validated path (its root copy optional): a certificate that plays
        // no part, or a root copy that differs from the anchor, means the quote was altered.
        guard chain == path || chain == Array(path.dropLast()) else {
            throw VerificationFailure(check: .pckChain, reason: "the embedded chain differs from the validated path")
        }
        return path
    }

    /// The RFC 5280 path from `chain`'s first certificate (the rest are candidate intermediates) to one of `roots`,
    /// validated at `time`, leaf first; `nil` if there is none.
    static func validatedPath(_ chain: [Certificate], roots: [Certificate], at time: Date) async -> [Certificate]? {
        guard let leaf = chain.first else { return nil }
        var verifier = Verifier(rootCertificates: CertificateStore(roots)) {
            RFC5280Policy(fixedExpiryValidationTime: time)
        }
        guard
            case .validCertificate(let path) = await verifier.validate(
                leaf: leaf,
                intermediates: CertificateStore(chain.dropFirst())
            )
        else { return nil }
        return Array(path)
    }

    /// The per-quote checks: the QE report signed by the PCK key, the QE report data binding the attestation key
    /// and authentication data, and the quote signed by the attestation key.
    func checkQuoteSignatures(pckLeaf leaf: Certificate) throws {
        try checkQEReport(pckLeaf: leaf)
        try checkQuoteSignature()
    }

    /// The QE report signed by the PCK key, its report data binding the attestation key and authentication data.
    func checkQEReport(pckLeaf leaf: Certificate) throws {
        guard let pckKey = P256.Signing.PublicKey(leaf.publicKey) else {
            throw VerificationFailure(check: .pckChain, reason: "the PCK key is not P-256")
        }
        SignatureCounter.record(1)
        guard let qeSignature = try? P256.Signing.ECDSASignature(rawRepresentation: qeReportSignature),
            pckKey.isValidSignature(qeSignature, for: qeReport.bytes)
        else {
            throw VerificationFailure(check: .qeReportSignature, reason: "the QE report is not signed by the PCK key")
        }
        let binding = Array(SHA256.hash(data: attestationKey + qeAuthenticationData))
        guard Array(qeReport.reportData[0..<32]) == binding, qeReport.reportData[32...].allSatisfy({ $0 == 0 }) else {
            throw VerificationFailure(
                check: .qeReportDataBinding,
                reason: "the QE report data does not bind the attestation key and authentication data"
            )
        }
    }

    /// The quote (header and body) signed by the attestation key.
    func checkQuoteSignature() throws {
        SignatureCounter.record(1)
        guard let key = try? P256.Signing.PublicKey(rawRepresentation: attestationKey),
            let quoteSignature = try? P256.Signing.ECDSASignature(rawRepresentation: signature),
            key.isValidSignature(quoteSignature, for: signedBytes)
        else {
            throw VerificationFailure(check: .quoteSignature, reason: "the quote is not signed by its attestation key")
        }
    }
}
