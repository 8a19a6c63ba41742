internal import Attestation
internal import Crypto
internal import EnclaveCore
internal import Foundation
internal import SwiftASN1
internal import X509

/// The simulated platform's certificates and keys, in the shape of Intel's: a root CA, a platform CA, a PCK
/// certificate carrying the SGX extension for this platform's TCB level, and the quoting enclave's attestation key.
///
/// Kept in `DIR/pki/` (0700, keys 0600). Created as a whole in a temporary directory and renamed into place, so two
/// processes starting at once end up with one set.
struct SimulatedPKI: Sendable {
    static let rootName = "EnclaveKit Simulated SGX Root CA"

    let rootCertificate: Certificate
    let rootKey: P256.Signing.PrivateKey
    let platformCACertificate: Certificate
    let platformCAKey: P256.Signing.PrivateKey
    let tcbSigningCertificate: Certificate
    let tcbSigningKey: P256.Signing.PrivateKey
    let pckCertificate: Certificate
    let pckKey: P256.Signing.PrivateKey
    let attestationKey: P256.Signing.PrivateKey
    let extensions: SGXExtensions
    let qeSVN: UInt16
    let tcb: TCBFile

    /// The PEM chain (PCK, platform CA, root) as quote certification data.
    var chainPEM: String {
        get throws {
            try [pckCertificate, platformCACertificate, rootCertificate]
                .map { try $0.serializeAsPEM().pemString }.joined(separator: "\n") + "\n"
        }
    }

    static func open(directory: String) throws -> SimulatedPKI {
        let path = directory + "/pki"
        if !FileManager.default.fileExists(atPath: path + "/pck.pem") {
            let staging = directory + "/pki.\(UUID().uuidString)"
            try FileManager.default.createDirectory(
                atPath: staging,
                withIntermediateDirectories: false,
                attributes: [.posixPermissions: 0o700]
            )
            try create(in: staging)
            do {
                try FileManager.default.moveItem(atPath: staging, toPath: path)
            } catch {
                try? FileManager.default.removeItem(atPath: staging)  // another process won: use its set
                guard FileManager.default.fileExists(atPath: path + "/pck.pem") else { throw error }
            }
        }
        return try load(from: path)
    }

    private static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EnclaveError.invalidConfiguration("platform file \(path) is missing")
        }
        return String(decoding: data, as: UTF8.self)
    }

    private static func load(from path: String) throws -> SimulatedPKI {
        let pck = try Certificate(pemEncoded: read(path + "/pck.pem"))
        guard let value = pck.extensions.first(where: { $0.oid == SGXExtensions.oid })?.value else {
            throw EnclaveError.invalidConfiguration("the simulated PCK certificate has no SGX extension")
        }
        let tcb = try JSONDecoder().decode(TCBFile.self, from: Data(read(path + "/tcb.json").utf8))
        let root = try Certificate(pemEncoded: read(path + "/root-ca.pem"))
        let rootKey = try P256.Signing.PrivateKey(pemRepresentation: read(path + "/root-ca.key.pem"))
        let tcbSigningKey = try P256.Signing.PrivateKey(pemRepresentation: read(path + "/tcb-signing.key.pem"))
        var tcbSigning = try Certificate(pemEncoded: read(path + "/tcb-signing.pem"))
        if tcbSigning.subject != (try tcbSigningName) {
            // A platform made before the verifier checked the signer's role: the same key, re-certified as Intel's
            // TCB Signing certificate is (verifiers refuse TCB info signed by any other certificate).
            tcbSigning = try issue(
                tcbSigningKey,
                subject: tcbSigningName,
                by: (root, rootKey),
                years: 20,
                authority: false
            )
            try Data(try tcbSigning.serializeAsPEM().pemString.utf8)
                .write(to: URL(fileURLWithPath: path + "/tcb-signing.pem"), options: .atomic)
        }
        return SimulatedPKI(
            rootCertificate: root,
            rootKey: rootKey,
            platformCACertificate: try Certificate(pemEncoded: read(path + "/platform-ca.pem")),
            platformCAKey: try P256.Signing.PrivateKey(pemRepresentation: read(path + "/platform-ca.key.pem")),
            tcbSigningCertificate: tcbSigning,
            tcbSigningKey: tcbSigningKey,
            pckCertificate: pck,
            pckKey: try P256.Signing.PrivateKey(pemRepresentation: read(path + "/pck.key.pem")),
            attestationKey: try P256.Signing.PrivateKey(pemRepresentation: read(path + "/attestation.key.pem")),
            extensions: try SGXExtensions(derEncoded: value),
            qeSVN: tcb.qeSVN,
            tcb: tcb
        )
    }

    /// The platform's TCB state that tests may change: the up-to-date level the collateral states (above the
    /// platform's own to make it out of date) and whether the PCK certificate is revoked.
    struct TCBFile: Codable {
        var qeSVN: UInt16
        var upToDateComponents: [Int]
        var revokedPCK: Bool
        /// Whether the root CA CRL lists the platform CA (absent in older files: not revoked).
        var revokedPlatformCA: Bool?
        /// Whether the root CA CRL lists the TCB signing certificate (absent in older files: not revoked).
        var revokedTCBSigning: Bool?
    }

    /// Re-issue the PCK certificate for a new platform TCB level (CPUSVN and PCESVN), as Intel issues one per level.
    static func reissuePCK(_ pki: SimulatedPKI, cpuSVN: [UInt8], pceSVN: Int, directory: String) throws {
        var sgx = pki.extensions
        sgx.cpuSVN = cpuSVN
        sgx.tcbComponents = cpuSVN.map(Int.init)
        sgx.pceSVN = pceSVN
        let pck = try issue(
            pki.pckKey,
            subject: pki.pckCertificate.subject,
            by: (pki.platformCACertificate, pki.platformCAKey),
            years: 7,
            authority: false,
            extra: [Certificate.Extension(oid: SGXExtensions.oid, critical: false, value: try sgx.derEncoded()[...])]
        )
        try Data(try pck.serializeAsPEM().pemString.utf8)
            .write(to: URL(fileURLWithPath: directory + "/pki/pck.pem"), options: .atomic)
    }

    /// Replace `tcb.json` atomically.
    static func writeTCB(_ tcb: TCBFile, directory: String) throws {
        let path = directory + "/pki/tcb.json"
        try JSONEncoder().encode(tcb).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// The TCB signing certificate's subject: the common name of Intel's TCB Signing certificate, which verifiers
    /// require of the signer of TCB info and QE identities, in the simulation's organization.
    static var tcbSigningName: DistinguishedName {
        get throws { try name("Intel SGX TCB Signing") }
    }

    static func name(_ commonName: String) throws -> DistinguishedName {
        try DistinguishedName {
            CommonName(commonName)
            OrganizationName("EnclaveKit (simulation)")
        }
    }
    /// Where the simulated root CA's CRL would be published (a reserved `.invalid` name: never fetched; verifiers
    /// take CRLs from the collateral).
    static let rootCRLURL = "https://enclavekit.invalid/sgx/certification/v4/rootcacrl"
    /// Where the simulated platform CA's CRL would be published.
    static let pckCRLURL = "https://enclavekit.invalid/sgx/certification/v4/pckcrl?ca=platform&encoding=der"

    /// A CRL Distribution Points extension naming one URI (`SEQUENCE { SEQUENCE { [0] { [0] { [6] uri } } } }`).
    static func crlDistributionPoint(_ uri: String) throws -> Certificate.Extension {
        var der = DER.Serializer()
        let tag0 = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
        der.appendConstructedNode(identifier: .sequence) { points in
            points.appendConstructedNode(identifier: .sequence) { point in
                point.appendConstructedNode(identifier: tag0) { name in
                    name.appendConstructedNode(identifier: tag0) { fullName in
                        fullName.appendPrimitiveNode(
                            identifier: ASN1Identifier(tagWithNumber: 6, tagClass: .contextSpecific)
                        ) {
                            $0.append(contentsOf: uri.utf8)
                        }
                    }
                }
            }
        }
        return Certificate.Extension(oid: [2, 5, 29, 31], critical: false, value: der.serializedBytes[...])
    }

    /// A certificate for `key` named `subject`, issued by `issuer` (nil: self-signed) for `years`, with the
    /// extensions Intel's SGX certificates carry.
    static func issue(
        _ key: P256.Signing.PrivateKey,
        subject: DistinguishedName,
        by issuer: (certificate: Certificate, key: P256.Signing.PrivateKey)?,
        years: Double,
        authority: Bool,
        extra: [Certificate.Extension] = []
    ) throws -> Certificate {
        let now = Date()
        let notBefore = now.addingTimeInterval(-3600)
        var extensions = Certificate.Extensions()
        // The extensions of Intel's SGX certificates, in their order: Authority Key Identifier (the root's names
        // itself), CRL Distribution Points, Subject Key Identifier, Key Usage and Basic Constraints (critical).
        let subjectKey = SubjectKeyIdentifier(hash: Certificate.PublicKey(key.publicKey))
        let authorityKey =
            try issuer.map { try $0.certificate.extensions.subjectKeyIdentifier?.keyIdentifier }
            ?? subjectKey.keyIdentifier
        if let authorityKey {
            try extensions.append(AuthorityKeyIdentifier(keyIdentifier: authorityKey).makeCertificateExtension())
        }
        let rootIssued = issuer.map { $0.certificate.subject == $0.certificate.issuer } ?? true
        try extensions.append(crlDistributionPoint(rootIssued ? rootCRLURL : pckCRLURL))
        try extensions.append(subjectKey.makeCertificateExtension())
        if authority {
            try extensions.append(Critical(KeyUsage(keyCertSign: true, cRLSign: true)).makeCertificateExtension())
            let constraints = BasicConstraints.isCertificateAuthority(maxPathLength: issuer == nil ? 1 : 0)
            try extensions.append(Critical(constraints).makeCertificateExtension())
        } else {
            try extensions.append(
                Critical(KeyUsage(digitalSignature: true, nonRepudiation: true)).makeCertificateExtension()
            )
            try extensions.append(Critical(BasicConstraints.notCertificateAuthority).makeCertificateExtension())
        }
        for item in extra { try extensions.append(item) }
        return try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: .init(key.publicKey),
            notValidBefore: notBefore,
            notValidAfter: now.addingTimeInterval(years * 365 * 86400),
            issuer: issuer?.certificate.subject ?? subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: .init(issuer?.key ?? key)
        )
    }

    /// Issue a fresh set: root CA → platform CA → PCK, plus the attestation key, at the default TCB level.
    private static func create(in directory: String) throws {
        let rootKey = P256.Signing.PrivateKey()
        let platformKey = P256.Signing.PrivateKey()
        let pckKey = P256.Signing.PrivateKey()
        let attestationKey = P256.Signing.PrivateKey()
        let tcbSigningKey = P256.Signing.PrivateKey()
        let root = try Self.issue(rootKey, subject: Self.name(Self.rootName), by: nil, years: 30, authority: true)
        let platformCA = try Self.issue(
            platformKey,
            subject: Self.name("EnclaveKit Simulated SGX PCK Platform CA"),
            by: (root, rootKey),
            years: 20,
            authority: true
        )
        // As Intel's: issued by the root CA, an end entity for digital signature and non-repudiation.
        let tcbSigning = try Self.issue(
            tcbSigningKey,
            subject: Self.tcbSigningName,
            by: (root, rootKey),
            years: 20,
            authority: false
        )
        var ppid = [UInt8](repeating: 0, count: 16)
        for index in ppid.indices { ppid[index] = UInt8.random(in: 0...255) }
        let cpuSVN: [UInt8] = [2, 2, 2, 2, 3, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0]
        let sgx = SGXExtensions(
            ppid: ppid,
            tcbComponents: cpuSVN.map(Int.init),
            pceSVN: 13,
            cpuSVN: cpuSVN,
            pceID: [0, 0],
            fmspc: [0x00, 0xE0, 0x5E, 0xC0, 0x00, 0x00],  // reserved for simulation: no real platform uses it
            sgxType: 0
        )
        let pck = try Self.issue(
            pckKey,
            subject: Self.name("EnclaveKit Simulated SGX PCK Certificate"),
            by: (platformCA, platformKey),
            years: 7,
            authority: false,
            extra: [Certificate.Extension(oid: SGXExtensions.oid, critical: false, value: try sgx.derEncoded()[...])]
        )
        func write(_ text: String, _ name: String, private isPrivate: Bool = false) throws {
            let path = directory + "/" + name
            try SecretFile.write(Array(text.utf8), to: path, mode: isPrivate ? 0o600 : 0o644)  // private from byte 1
        }
        try write(root.serializeAsPEM().pemString, "root-ca.pem")
        try write(rootKey.pemRepresentation, "root-ca.key.pem", private: true)
        try write(platformCA.serializeAsPEM().pemString, "platform-ca.pem")
        try write(platformKey.pemRepresentation, "platform-ca.key.pem", private: true)
        try write(pck.serializeAsPEM().pemString, "pck.pem")
        try write(pckKey.pemRepresentation, "pck.key.pem", private: true)
        try write(attestationKey.pemRepresentation, "attestation.key.pem", private: true)
        try write(tcbSigning.serializeAsPEM().pemString, "tcb-signing.pem")
        try write(tcbSigningKey.pemRepresentation, "tcb-signing.key.pem", private: true)
        let tcb = TCBFile(qeSVN: 8, upToDateComponents: cpuSVN.map(Int.init), revokedPCK: false)
        try write(String(decoding: try JSONEncoder().encode(tcb), as: UTF8.self), "tcb.json")
    }
}
