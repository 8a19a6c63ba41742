internal import Crypto
public import EnclaveCore
public import Foundation
internal import SwiftASN1
public import X509

/// An X.509 certificate revocation list (RFC 5280), parsed from DER with swift-asn1 (swift-certificates has no CRL
/// support). The exact `tbsCertList` bytes are kept for the signature check.
public struct CertificateRevocationList: Sendable {
    /// The issuer's name: the CA whose certificates the list revokes. Nothing here is trusted until the list's
    /// signature verified with that CA's key.
    public let issuer: DistinguishedName
    /// When the CRL was issued; ``isCurrent(at:)`` is false before it.
    public let thisUpdate: Date
    /// When the next CRL is due; from then on ``isCurrent(at:)`` is false. `nil` when the CRL names no date (it then
    /// never goes stale by date).
    public let nextUpdate: Date?
    /// Serial numbers of revoked certificates, as unsigned integers: big-endian magnitude without leading zero
    /// octets, the form swift-certificates keeps a certificate's serial in. (DER prefixes a serial whose top bit is
    /// set with a `00` octet; comparing the encoded octets would miss about half of all serials.)
    public var revokedSerials: Set<[UInt8]> { Set(serials.map(\.bytes)) }
    /// `revokedSerials`, hashed over their buffers (a CRL lists hundreds; `Array<UInt8>` hashes byte by byte).
    let serials: Set<CertificateCache.DERKey>
    let signedBytes: [UInt8]
    let signature: [UInt8]

    /// Parse DER, hexadecimal DER or PEM (`X509 CRL`), as PCS and PCCS serve them.
    /// - Throws: `EnclaveError` — `limitExceeded` over 4 MiB, `malformedInput` when it is not a CRL. The signature is
    ///   not checked here: see ``isSigned(by:)``.
    public init(bytes input: [UInt8]) throws(EnclaveError) {
        guard input.count <= 4 << 20 else { throw .limitExceeded("CRL larger than 4 MiB") }
        var der = input
        if input.first != 0x30 {
            let text = String(decoding: input, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if let hex = Hex.decode(text) {
                der = hex
            } else if let document = try? PEMDocument(pemString: text), document.discriminator == "X509 CRL" {
                der = Array(document.derBytes)
            } else {
                throw .malformedInput("CRL is neither DER, hexadecimal DER nor PEM")
            }
        }
        let parts: Parts
        if let fast = Self.fastParts(der) {
            parts = fast
        } else {
            parts = try Self.asn1Parts(der)
        }
        (issuer, thisUpdate, nextUpdate, serials) = (parts.issuer, parts.thisUpdate, parts.nextUpdate, parts.serials)
        (signedBytes, signature) = (parts.signedBytes, parts.signature)
    }

    /// What a CRL's DER holds.
    struct Parts: Equatable {
        var issuer: DistinguishedName
        var thisUpdate: Date
        var nextUpdate: Date?
        var serials: Set<CertificateCache.DERKey>
        var signedBytes: [UInt8]
        var signature: [UInt8]
    }

    /// The CRL read with swift-asn1 (every DER rule checked); its errors are the CRL's.
    static func asn1Parts(_ der: [UInt8]) throws(EnclaveError) -> Parts {
        do {
            let root = try DER.parse(der)
            var parsed: Parts?
            try DER.sequence(root, identifier: .sequence) { outer in
                guard let tbs = outer.next() else { throw ASN1Error.invalidASN1Object(reason: "no tbsCertList") }
                _ = outer.next()  // signatureAlgorithm: ECDSA with SHA-256 is checked by the verification itself
                let signature = try ASN1BitString(derEncoded: &outer)
                let fields = try Self.parseTBS(tbs)
                parsed = Parts(
                    issuer: fields.0,
                    thisUpdate: fields.1,
                    nextUpdate: fields.2,
                    serials: fields.3,
                    signedBytes: Array(tbs.encodedBytes),
                    signature: Array(signature.bytes)
                )
            }
            guard let parsed else { throw ASN1Error.invalidASN1Object(reason: "empty CRL") }
            return parsed
        } catch {
            throw .malformedInput("CRL does not parse: \(error)")
        }
    }

    private static func parseTBS(
        _ node: ASN1Node
    ) throws -> (DistinguishedName, Date, Date?, Set<CertificateCache.DERKey>) {
        try DER.sequence(node, identifier: .sequence) { nodes in
            var next = nodes.next()
            if let version = next, version.identifier == .integer {
                guard try Int(derEncoded: version) == 1 else {
                    throw ASN1Error.invalidASN1Object(reason: "unsupported CRL version")
                }
                next = nodes.next()
            }
            guard next != nil else { throw ASN1Error.invalidASN1Object(reason: "no signature algorithm") }
            guard let issuerNode = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no issuer") }
            let issuer = try DistinguishedName(derEncoded: issuerNode)
            guard let thisNode = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no thisUpdate") }
            let thisUpdate = try DERTime.date(thisNode)
            var nextUpdate: Date?
            var revoked = Set<CertificateCache.DERKey>()
            while let item = nodes.next() {
                switch item.identifier {
                case .utcTime, .generalizedTime:
                    nextUpdate = try DERTime.date(item)
                case .sequence:
                    try DER.sequence(item, identifier: .sequence) { entries in
                        while let entry = entries.next() {
                            try DER.sequence(entry, identifier: .sequence) { fields in
                                guard let serial = fields.next(), serial.identifier == .integer else {
                                    throw ASN1Error.invalidASN1Object(reason: "bad revoked entry")
                                }
                                // A positive INTEGER in strict DER (fewest octets, no negative numbers), read as
                                // its magnitude: a malformed entry fails the whole CRL.
                                revoked.insert(.init(Self.magnitude(try ArraySlice<UInt8>(derEncoded: serial))))
                                while fields.next() != nil {}  // revocation date, entry extensions
                            }
                        }
                    }
                default:
                    break  // [0] crlExtensions
                }
            }
            return (issuer, thisUpdate, nextUpdate, revoked)
        }
    }

    /// Whether `issuer`'s key signed this CRL (ECDSA P-256 with SHA-256 over the exact `tbsCertList` bytes).
    public func isSigned(by issuer: Certificate) -> Bool {
        guard let key = P256.Signing.PublicKey(issuer.publicKey),
            let parsed = try? P256.Signing.ECDSASignature(derRepresentation: signature)
        else { return false }
        SignatureCounter.record(1)
        return key.isValidSignature(parsed, for: signedBytes)
    }

    /// Whether `certificate` is listed as revoked: its serial number compared as an integer.
    public func revokes(_ certificate: Certificate) -> Bool {
        revokes(serial: certificate.serialNumber)
    }

    /// Whether `serial` is listed as revoked, compared as an integer.
    public func revokes(serial: Certificate.SerialNumber) -> Bool {
        serials.contains(.init(Self.magnitude(serial.bytes)))
    }

    /// An unsigned big-endian integer without leading zero octets.
    static func magnitude(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        Array(bytes.drop { $0 == 0 })
    }

    /// Whether `time` lies in [thisUpdate, nextUpdate).
    public func isCurrent(at time: Date) -> Bool {
        time >= thisUpdate && (nextUpdate.map { time < $0 } ?? true)
    }
}
