internal import Crypto
public import EnclaveCore
public import Foundation
internal import SwiftASN1
internal import X509
internal import _CryptoExtras

/// An X.509 certificate of AMD's SEV key hierarchy (ARK, ASK, ASVK, VCEK, VLEK), parsed with swift-asn1.
///
/// swift-certificates cannot take these: the ARK, ASK and ASVK have RSASSA-PSS public keys, every signature in the
/// hierarchy is RSASSA-PSS with SHA-384, and several real VCEKs carry serial number 0, which RFC 5280 forbids but
/// AMD's key distribution service issues. The exact `tbsCertificate` bytes are kept for the signature check.
public struct AMDCertificate: Hashable, Sendable {
    /// The DER encoding.
    public let derBytes: [UInt8]
    /// The serial number's content octets (may be `[0]`).
    public let serialNumber: [UInt8]
    /// The issuer and subject names as encoded (compared byte for byte when building a chain).
    public let issuerBytes: [UInt8]
    /// The subject name as encoded.
    public let subjectBytes: [UInt8]
    /// The subject's common name, if any (`ARK-Milan`, `SEV-Milan`, `SEV-VLEK-Genoa`, `SEV-VCEK`, …).
    public let commonName: String?
    /// The start of the validity period.
    public let notValidBefore: Date
    /// The end of the validity period; a chain is refused at a time outside any of its certificates' periods.
    public let notValidAfter: Date
    /// The DER `SubjectPublicKeyInfo`.
    public let publicKeyInfo: [UInt8]
    /// Extension values (the content of `extnValue`) by dotted OID.
    public let extensions: [String: [UInt8]]
    let tbsBytes: [UInt8]
    let signatureAlgorithm: [UInt8]
    let signature: [UInt8]
    let publicKeyAlgorithm: ASN1ObjectIdentifier
    let publicKeyBits: [UInt8]

    static let rsaEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 1, 1]
    static let rsassaPSS: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 1, 10]
    static let ecPublicKey: ASN1ObjectIdentifier = [1, 2, 840, 10045, 2, 1]
    static let sha384: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 2]
    static let mgf1: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 1, 8]
    static let commonNameOID: ASN1ObjectIdentifier = [2, 5, 4, 3]

    /// The largest certificate accepted.
    public static let maxSize = 16 << 10

    /// Parse one DER certificate; nothing may follow it.
    /// - Throws: `EnclaveError` — `limitExceeded` over ``maxSize``, `malformedInput` when it is not one certificate.
    ///   Nothing is verified here.
    public init(derEncoded bytes: [UInt8]) throws(EnclaveError) {
        guard bytes.count <= Self.maxSize else { throw .limitExceeded("certificate larger than \(Self.maxSize) bytes") }
        do {
            let root = try DER.parse(bytes)
            var result: Self?
            try DER.sequence(root, identifier: .sequence) { outer in
                guard let tbs = outer.next(), let algorithm = outer.next() else {
                    throw ASN1Error.invalidASN1Object(reason: "incomplete certificate")
                }
                let signature = try ASN1BitString(derEncoded: &outer)
                guard outer.next() == nil else { throw ASN1Error.invalidASN1Object(reason: "trailing fields") }
                result = try Self(der: bytes, tbs: tbs, algorithm: algorithm, signature: Array(signature.bytes))
            }
            guard let result else { throw ASN1Error.invalidASN1Object(reason: "empty certificate") }
            self = result
        } catch {
            throw .malformedInput("AMD certificate does not parse: \(error)")
        }
    }

    /// Parse a PEM `CERTIFICATE`.
    /// - Throws: `EnclaveError` `malformedInput` when it is not one PEM certificate.
    public init(pemEncoded text: String) throws(EnclaveError) {
        guard let document = try? PEMDocument(pemString: text), document.discriminator == "CERTIFICATE" else {
            throw .malformedInput("not a PEM certificate")
        }
        try self.init(derEncoded: Array(document.derBytes))
    }

    /// Every certificate of a PEM bundle, or the one certificate of a DER file.
    /// - Throws: `EnclaveError` — `limitExceeded` over 1 MiB, `malformedInput` when a certificate does not parse.
    public static func parseAll(_ bytes: [UInt8]) throws(EnclaveError) -> [AMDCertificate] {
        if bytes.first == 0x30 { return [try AMDCertificate(derEncoded: bytes)] }
        guard bytes.count <= 1 << 20 else { throw .limitExceeded("certificate file larger than 1 MiB") }
        guard let documents = try? PEMDocument.parseMultiple(pemString: String(decoding: bytes, as: UTF8.self)),
            !documents.isEmpty
        else {
            throw .malformedInput("neither a DER certificate nor PEM certificates")
        }
        var certificates: [AMDCertificate] = []
        for document in documents where document.discriminator == "CERTIFICATE" {
            certificates.append(try AMDCertificate(derEncoded: Array(document.derBytes)))
        }
        return certificates
    }

    private init(der: [UInt8], tbs: ASN1Node, algorithm: ASN1Node, signature: [UInt8]) throws {
        derBytes = der
        tbsBytes = Array(tbs.encodedBytes)
        signatureAlgorithm = Array(algorithm.encodedBytes)
        self.signature = signature
        var fields:
            (
                serial: [UInt8], issuer: [UInt8], subject: [UInt8], name: String?, from: Date, until: Date,
                spki: [UInt8], keyAlgorithm: ASN1ObjectIdentifier, keyBits: [UInt8], extensions: [String: [UInt8]]
            )?
        try DER.sequence(tbs, identifier: .sequence) { nodes in
            let version =
                try DER.optionalExplicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) {
                    try Int(derEncoded: $0)
                } ?? 0
            guard version == 2 else { throw ASN1Error.invalidASN1Object(reason: "not an X.509 v3 certificate") }
            guard let serialNode = nodes.next(), serialNode.identifier == .integer,
                case .primitive(let serial) = serialNode.content, !serial.isEmpty
            else { throw ASN1Error.invalidASN1Object(reason: "bad serial number") }
            guard let innerAlgorithm = nodes.next(), innerAlgorithm.encodedBytes == algorithm.encodedBytes else {
                throw ASN1Error.invalidASN1Object(reason: "the signature algorithms differ")
            }
            guard let issuer = nodes.next(), issuer.identifier == .sequence else {
                throw ASN1Error.invalidASN1Object(reason: "bad issuer")
            }
            var window: (Date, Date)?
            guard let validity = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no validity") }
            try DER.sequence(validity, identifier: .sequence) { times in
                guard let from = times.next(), let until = times.next(), times.next() == nil else {
                    throw ASN1Error.invalidASN1Object(reason: "bad validity")
                }
                window = (try DERTime.date(from), try DERTime.date(until))
            }
            guard let subject = nodes.next(), subject.identifier == .sequence, let window else {
                throw ASN1Error.invalidASN1Object(reason: "bad subject")
            }
            let name = try? DistinguishedName(derEncoded: subject)
            let commonName = name?.flatMap { $0 }.first { $0.type == Self.commonNameOID }.map { "\($0.value)" }
            guard let spki = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no public key") }
            var key: (ASN1ObjectIdentifier, [UInt8])?
            try DER.sequence(spki, identifier: .sequence) { parts in
                guard let algorithmNode = parts.next() else { throw ASN1Error.invalidASN1Object(reason: "no key type") }
                let oid = try DER.sequence(algorithmNode, identifier: .sequence) { items in
                    let oid = try ASN1ObjectIdentifier(derEncoded: &items)
                    while items.next() != nil {}
                    return oid
                }
                let bits = try ASN1BitString(derEncoded: &parts)
                guard parts.next() == nil else { throw ASN1Error.invalidASN1Object(reason: "bad public key") }
                key = (oid, Array(bits.bytes))
            }
            var extensions: [String: [UInt8]] = [:]
            while let node = nodes.next() {
                // [1] issuerUniqueID and [2] subjectUniqueID are ignored; [3] holds the extensions.
                guard node.identifier == ASN1Identifier(tagWithNumber: 3, tagClass: .contextSpecific) else { continue }
                guard case .constructed(let wrapped) = node.content, let list = wrapped.first(where: { _ in true })
                else { throw ASN1Error.invalidASN1Object(reason: "bad extensions") }
                try DER.sequence(list, identifier: .sequence) { items in
                    while let item = items.next() {
                        try DER.sequence(item, identifier: .sequence) { parts in
                            let oid = try ASN1ObjectIdentifier(derEncoded: &parts)
                            var valueNode = parts.next()
                            if valueNode?.identifier == .boolean { valueNode = parts.next() }
                            guard let valueNode, parts.next() == nil else {
                                throw ASN1Error.invalidASN1Object(reason: "bad extension")
                            }
                            let value = try ASN1OctetString(derEncoded: valueNode)
                            guard extensions.updateValue(Array(value.bytes), forKey: oid.description) == nil else {
                                throw ASN1Error.invalidASN1Object(reason: "duplicate extension \(oid)")
                            }
                        }
                    }
                }
            }
            guard let key else { throw ASN1Error.invalidASN1Object(reason: "no public key") }
            fields = (
                Array(serial), Array(issuer.encodedBytes), Array(subject.encodedBytes), commonName, window.0,
                window.1, Array(spki.encodedBytes), key.0, key.1, extensions
            )
        }
        guard let fields else { throw ASN1Error.invalidASN1Object(reason: "empty tbsCertificate") }
        serialNumber = fields.serial
        issuerBytes = fields.issuer
        subjectBytes = fields.subject
        commonName = fields.name
        notValidBefore = fields.from
        notValidAfter = fields.until
        publicKeyInfo = fields.spki
        publicKeyAlgorithm = fields.keyAlgorithm
        publicKeyBits = fields.keyBits
        extensions = fields.extensions
    }

    /// Whether `time` lies in the validity window (both ends included, as RFC 5280 says).
    public func isValid(at time: Date) -> Bool { time >= notValidBefore && time <= notValidAfter }

    /// Whether `issuer`'s RSA key signed this certificate with RSASSA-PSS, SHA-384, MGF1-SHA-384 and a 48-byte salt
    /// — the only scheme in AMD's hierarchy.
    public func isSigned(by issuer: AMDCertificate) -> Bool {
        guard issuerBytes == issuer.subjectBytes, Self.isPSSWithSHA384(signatureAlgorithm),
            issuer.publicKeyAlgorithm == Self.rsassaPSS || issuer.publicKeyAlgorithm == Self.rsaEncryption,
            let key = try? _RSA.Signing.PublicKey(derRepresentation: issuer.publicKeyBits)
        else { return false }
        SignatureCounter.record(1)
        return key.isValidSignature(
            _RSA.Signing.RSASignature(rawRepresentation: signature),
            for: SHA384.hash(data: tbsBytes),
            padding: .PSS
        )
    }

    /// The subject's ECDSA P-384 key (VCEK, VLEK).
    func p384Key() -> P384.Signing.PublicKey? {
        guard publicKeyAlgorithm == Self.ecPublicKey else { return nil }
        return try? P384.Signing.PublicKey(derRepresentation: publicKeyInfo)
    }

    /// `RSASSA-PSS` whose parameters name SHA-384, MGF1 with SHA-384 and a salt of 48 bytes.
    static func isPSSWithSHA384(_ encoded: [UInt8]) -> Bool {
        guard let node = try? DER.parse(encoded) else { return false }
        return
            (try? DER.sequence(node, identifier: .sequence) { items -> Bool in
                guard try ASN1ObjectIdentifier(derEncoded: &items) == rsassaPSS, let parameters = items.next(),
                    items.next() == nil
                else { return false }
                var hash: ASN1ObjectIdentifier?
                var mgfHash: ASN1ObjectIdentifier?
                var salt = 20
                try DER.sequence(parameters, identifier: .sequence) { fields in
                    while let field = fields.next() {
                        guard case .constructed(let wrapped) = field.content,
                            let inner = wrapped.first(where: { _ in true })
                        else { throw ASN1Error.invalidASN1Object(reason: "bad PSS parameter") }
                        switch field.identifier {
                        case ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific):
                            hash = try algorithmOID(inner)
                        case ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific):
                            try DER.sequence(inner, identifier: .sequence) { mgf in
                                guard try ASN1ObjectIdentifier(derEncoded: &mgf) == Self.mgf1, let hashNode = mgf.next()
                                else { throw ASN1Error.invalidASN1Object(reason: "MGF is not MGF1") }
                                mgfHash = try algorithmOID(hashNode)
                            }
                        case ASN1Identifier(tagWithNumber: 2, tagClass: .contextSpecific):
                            salt = try Int(derEncoded: inner)
                        case ASN1Identifier(tagWithNumber: 3, tagClass: .contextSpecific):
                            guard try Int(derEncoded: inner) == 1 else {
                                throw ASN1Error.invalidASN1Object(reason: "bad trailer field")
                            }
                        default:
                            throw ASN1Error.invalidASN1Object(reason: "unknown PSS parameter")
                        }
                    }
                }
                return hash == sha384 && mgfHash == sha384 && salt == 48
            }) ?? false
    }

    private static func algorithmOID(_ node: ASN1Node) throws -> ASN1ObjectIdentifier {
        try DER.sequence(node, identifier: .sequence) { items in
            let oid = try ASN1ObjectIdentifier(derEncoded: &items)
            while items.next() != nil {}
            return oid
        }
    }
}
