internal import Crypto
internal import EnclaveCore
public import Foundation
internal import SwiftASN1

extension SEVSNPReport {
    /// A check of SEV-SNP verification, named in failures: one of ``AttestationError``'s codes.
    public typealias Check = AttestationError.Code

    /// Why verification failed: the check and a reason (``AttestationError``, the one error of every verifier).
    public typealias VerificationFailure = AttestationError

    /// AMD's VCEK/VLEK certificate extensions (`1.3.6.1.4.1.3704.1.*`).
    enum ExtensionOID {
        static let productName = "1.3.6.1.4.1.3704.1.2"
        static let bootloader = "1.3.6.1.4.1.3704.1.3.1"
        static let tee = "1.3.6.1.4.1.3704.1.3.2"
        static let snp = "1.3.6.1.4.1.3704.1.3.3"
        static let microcode = "1.3.6.1.4.1.3704.1.3.8"
        static let fmc = "1.3.6.1.4.1.3704.1.3.9"
        static let hardwareID = "1.3.6.1.4.1.3704.1.4"
    }

    /// Verify the report: the signing certificate (VCEK or VLEK) chains through an ASK or ASVK (from `chain` or
    /// AMD's defaults) to one of `roots` at `time`, is the kind of key the report names, is for the processor
    /// generation of its root, certifies exactly the report's reported TCB and (VCEK) chip ID, and signed the
    /// report. Guest policy (debug, migration agent, SMT) and VMPL are claims for ``EvidencePolicy``.
    /// - Throws: ``VerificationFailure`` naming the check that failed.
    public func verify(
        signingCertificate leaf: AMDCertificate,
        chain: [AMDCertificate] = [],
        roots: [AMDCertificate] = AMDRoots.arks,
        at time: Date
    ) throws -> Claims {
        let (intermediate, root) = try Self.validateChain(leaf: leaf, chain: chain, roots: roots, at: time)

        // The kind of key and the processor generation.
        let isVLEK = intermediate.commonName?.contains("VLEK") == true
        guard (signingKey == .vlek) == isVLEK else {
            throw VerificationFailure(
                check: .signingKey,
                reason: "the report names the \(signingKey == .vlek ? "VLEK" : "VCEK"), the certificate is a "
                    + (isVLEK ? "VLEK" : "VCEK")
            )
        }
        guard let name = root.commonName, name.hasPrefix("ARK-"),
            let product = Product(rawValue: String(name.dropFirst(4)))
        else {
            throw VerificationFailure(check: .product, reason: "the root names no known processor generation")
        }
        var certifiedProduct: String?
        if let value = leaf.extensions[ExtensionOID.productName] {
            let productName = (try? ASN1IA5String(derEncoded: Array(value))).map { String($0) }
            certifiedProduct = productName
            guard let productName, productName == product.rawValue || productName.hasPrefix(product.rawValue + "-")
            else {
                throw VerificationFailure(
                    check: .product,
                    reason: "the certificate is for \(productName ?? "an unreadable product"), its root for "
                        + product.rawValue
                )
            }
        }

        // The certificate certifies this TCB and (VCEK) this chip.
        let reported = TCBVersion(rawValue: reportedTCB, product: product)
        var expected: [(String, String, UInt8)] = [
            ("bootloader", ExtensionOID.bootloader, reported.bootloader), ("TEE", ExtensionOID.tee, reported.tee),
            ("SNP", ExtensionOID.snp, reported.snp), ("microcode", ExtensionOID.microcode, reported.microcode),
        ]
        if let fmc = reported.fmc { expected.append(("FMC", ExtensionOID.fmc, fmc)) }
        for (component, oid, value) in expected {
            guard let encoded = leaf.extensions[oid], let certified = try? Int(derEncoded: Array(encoded)) else {
                throw VerificationFailure(
                    check: .reportedTCB,
                    reason: "the certificate does not state the \(component) security patch level"
                )
            }
            guard certified == Int(value) else {
                throw VerificationFailure(
                    check: .reportedTCB,
                    reason: "the report's \(component) SPL is \(value), the certificate's \(certified)"
                )
            }
        }
        if signingKey == .vcek && !chipIDMasked {
            guard let hardwareID = leaf.extensions[ExtensionOID.hardwareID].map(Self.unwrapHardwareID) else {
                throw VerificationFailure(check: .chipID, reason: "the VCEK has no hardware ID")
            }
            let matches =
                hardwareID.count == chipID.count
                ? hardwareID == chipID
                : hardwareID.count == 8 && Array(chipID.prefix(8)) == hardwareID
                    && chipID.dropFirst(8).allSatisfy { $0 == 0 }
            guard matches else {
                throw VerificationFailure(check: .chipID, reason: "the report's chip ID is not the VCEK's hardware ID")
            }
        }

        // The signature.
        SignatureCounter.record(1)
        guard let key = leaf.p384Key(),
            let signature = try? P384.Signing.ECDSASignature(rawRepresentation: signatureR + signatureS),
            key.isValidSignature(signature, for: signedBytes)
        else {
            throw VerificationFailure(check: .reportSignature, reason: "the report is not signed by the certified key")
        }
        return claims(product: product, certifiedProduct: certifiedProduct)
    }

    /// Validate a VCEK or VLEK chain: `leaf` ← an ASK or ASVK (from `chain` or AMD's defaults) ← one of `roots`
    /// (self-signed), every certificate valid at `time`, every signature RSASSA-PSS with SHA-384.
    /// - Returns: the intermediate and the root that anchor `leaf`.
    /// - Throws: ``VerificationFailure`` with ``AttestationError/Code/certificateChain`` naming the certificate that
    ///   failed.
    public static func validateChain(
        leaf: AMDCertificate,
        chain: [AMDCertificate] = [],
        roots: [AMDCertificate] = AMDRoots.arks,
        at time: Date
    ) throws -> (intermediate: AMDCertificate, root: AMDCertificate) {
        guard leaf.isValid(at: time) else {
            throw VerificationFailure(
                check: .certificateChain,
                reason: "the \(leaf.commonName ?? "signing") certificate is not valid at \(time) "
                    + "(\(leaf.notValidBefore) to \(leaf.notValidAfter))"
            )
        }
        let candidates = chain.filter { $0.subjectBytes != $0.issuerBytes } + AMDRoots.intermediates
        guard let intermediate = candidates.first(where: { leaf.isSigned(by: $0) }) else {
            throw VerificationFailure(
                check: .certificateChain,
                reason: "the \(leaf.commonName ?? "signing") certificate is not signed by an AMD ASK or ASVK"
            )
        }
        guard let root = roots.first(where: { intermediate.isSigned(by: $0) && $0.isSigned(by: $0) }) else {
            throw VerificationFailure(
                check: .certificateChain,
                reason: "\(intermediate.commonName ?? "the intermediate") does not chain to a trusted AMD root key"
            )
        }
        for certificate in [intermediate, root] where !certificate.isValid(at: time) {
            throw VerificationFailure(
                check: .certificateChain,
                reason: "\(certificate.commonName ?? "a CA certificate") is not valid at \(time)"
            )
        }
        return (intermediate, root)
    }

    /// The hardware ID as issued: raw bytes (64, or 8 on Turin), or wrapped in a DER OCTET STRING.
    static func unwrapHardwareID(_ value: [UInt8]) -> [UInt8] {
        if value.count == 64 || value.count == 8 { return value }
        if let node = try? DER.parse(value), let octets = try? ASN1OctetString(derEncoded: node) {
            return Array(octets.bytes)
        }
        return value
    }

    /// The claims of a verified report.
    func claims(product: Product, certifiedProduct: String?) -> Claims {
        Claims(
            format: "sev-snp",
            simulated: false,
            debug: policy.debugAllowed,
            reportData: reportData,
            sevSNP: Claims.SEVSNP(
                version: version,
                measurement: measurement,
                hostData: hostData,
                familyID: familyID,
                imageID: imageID,
                guestSVN: guestSVN,
                policy: policy,
                platformInfo: platformInfo,
                vmpl: vmpl,
                idKeyDigest: idKeyDigest,
                authorKeyDigest: authorKeyDigest,
                reportID: reportID,
                chipID: chipID,
                reportedTCB: TCBVersion(rawValue: reportedTCB, product: product),
                committedTCB: TCBVersion(rawValue: committedTCB, product: product),
                currentTCB: TCBVersion(rawValue: currentTCB, product: product),
                launchTCB: TCBVersion(rawValue: launchTCB, product: product),
                signingKey: signingKey == .vlek ? "VLEK" : "VCEK",
                productName: product.rawValue,
                certifiedProduct: certifiedProduct
            )
        )
    }
}
