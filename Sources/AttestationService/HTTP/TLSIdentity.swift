internal import Crypto
internal import EnclaveCore
internal import Foundation
internal import NIOSSL
internal import SwiftASN1
internal import X509

#if canImport(Glibc)
internal import Glibc
#endif

/// The certificate chain and private key the attestation service presents over HTTPS.
///
/// Either given (`--tls-cert`/`--tls-key`), or a self-signed ECDSA P-256 certificate created on first start and kept
/// in the data directory (`tls/private-key.pem` 0600, `tls/certificate.pem`), so that clients can pin it (its
/// ``fingerprint``) or trust it as a CA file.
public struct TLSIdentity: Sendable {
    /// The certificate chain, leaf first, as PEM.
    public let certificateChainPEM: String
    /// The leaf's private key, as PEM. Never logged.
    let privateKeyPEM: String
    /// SHA-256 of the leaf certificate's DER, lowercase hexadecimal (what a client pins).
    public let fingerprint: String

    /// An identity from PEM text: a certificate chain (leaf first) and the leaf's private key.
    public init(certificateChainPEM: String, privateKeyPEM: String) throws {
        let chain = try Self.certificates(certificateChainPEM)
        let leaf = try Certificate(derEncoded: chain[0])
        let key: Certificate.PrivateKey
        do {
            key = try Certificate.PrivateKey(pemEncoded: privateKeyPEM)
        } catch {
            throw ServiceError.invalidTLSIdentity("the TLS private key is not a PEM private key")
        }
        guard key.publicKey == leaf.publicKey else {
            throw ServiceError.invalidTLSIdentity("the TLS private key does not match the certificate")
        }
        self.certificateChainPEM = certificateChainPEM
        self.privateKeyPEM = privateKeyPEM
        self.fingerprint = Self.fingerprint(der: chain[0])
    }

    /// The identity in `certificatePath` and `keyPath` (PEM files).
    public init(certificatePath: String, keyPath: String) throws {
        guard let certificate = FileManager.default.contents(atPath: certificatePath) else {
            throw ServiceError.invalidTLSIdentity("cannot read the TLS certificate \(certificatePath)")
        }
        guard let key = FileManager.default.contents(atPath: keyPath) else {
            throw ServiceError.invalidTLSIdentity("cannot read the TLS private key \(keyPath)")
        }
        let attributes = try? FileManager.default.attributesOfItem(atPath: keyPath)
        let mode = attributes?[.posixPermissions] as? Int ?? 0
        // Another user's key file is theirs to replace: only this user's or root's is trusted.
        let owner = (attributes?[.ownerAccountID] as? NSNumber)?.uint32Value
        guard let owner, owner == geteuid() || owner == 0 else {
            throw ServiceError.invalidTLSIdentity(
                "the TLS private key \(keyPath) is owned by uid \(owner.map(String.init) ?? "?"), not by this user "
                    + "(uid \(geteuid())) or root"
            )
        }
        guard mode & 0o007 == 0 else {
            throw ServiceError.invalidTLSIdentity(
                "the TLS private key \(keyPath) has mode 0\(String(mode, radix: 8)): every user may read it; "
                    + "chmod 600 \(keyPath)"
            )
        }
        try self.init(
            certificateChainPEM: String(decoding: certificate, as: UTF8.self),
            privateKeyPEM: String(decoding: key, as: UTF8.self)
        )
    }

    /// The self-signed identity kept in `directory/tls`, created on first use for `hostnames` (names and IP
    /// addresses; `localhost`, 127.0.0.1 and ::1 are always included) and again when it is within a day of expiring
    /// (it is valid for 825 days). The key is written 0600 from its first byte. To serve other names, remove
    /// `directory/tls` or give a certificate.
    public static func selfSigned(directory: String, hostnames: [String] = []) throws -> TLSIdentity {
        let tls = directory + "/tls"
        try SecretFile.prepareDirectory(directory, what: "data directory")
        try SecretFile.prepareDirectory(tls, what: "TLS directory")
        SecretFile.removeLeftovers(in: tls)
        let certificatePath = tls + "/certificate.pem"
        let keyPath = tls + "/private-key.pem"
        if FileManager.default.fileExists(atPath: keyPath), FileManager.default.fileExists(atPath: certificatePath) {
            let existing = try TLSIdentity(certificatePath: certificatePath, keyPath: keyPath)
            // Kept until it is about to expire (a new one has a new fingerprint: pinned clients must learn it).
            let leaf = try Certificate(derEncoded: try certificates(existing.certificateChainPEM)[0])
            if leaf.notValidAfter > Date().addingTimeInterval(86_400) { return existing }
        }
        let key = P256.Signing.PrivateKey()
        let certificate = try makeCertificate(key: key, hostnames: hostnames)
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        let pem = PEMDocument(type: "CERTIFICATE", derBytes: serializer.serializedBytes).pemString + "\n"
        // Key first: a certificate never exists without its key.
        try SecretFile.write(Array(key.pemRepresentation.utf8), to: keyPath)
        try SecretFile.write(Array(pem.utf8), to: certificatePath, mode: 0o644)
        return try TLSIdentity(certificateChainPEM: pem, privateKeyPEM: key.pemRepresentation)
    }

    /// The server's TLS configuration: TLS 1.2 or later, this chain and key.
    func serverConfiguration() throws -> TLSConfiguration {
        do {
            let chain = try NIOSSLCertificate.fromPEMBytes(Array(certificateChainPEM.utf8))
            let key = try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem)
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain.map { .certificate($0) },
                privateKey: .privateKey(key)
            )
            configuration.minimumTLSVersion = .tlsv12
            return configuration
        } catch {
            throw ServiceError.invalidTLSIdentity("the TLS certificate or key is not usable: \(error)")
        }
    }

    /// SHA-256 of `der`, lowercase hexadecimal.
    static func fingerprint(der: [UInt8]) -> String {
        SHA256.hash(data: der).map { String(format: "%02x", $0) }.joined()
    }

    static func certificates(_ pem: String) throws -> [[UInt8]] {
        guard let documents = try? PEMDocument.parseMultiple(pemString: pem),
            !documents.isEmpty, documents.allSatisfy({ $0.discriminator == "CERTIFICATE" })
        else {
            throw ServiceError.invalidTLSIdentity("the TLS certificate file holds no PEM certificate")
        }
        return documents.map(\.derBytes)
    }

    static func makeCertificate(key: P256.Signing.PrivateKey, hostnames: [String]) throws -> Certificate {
        var names: [GeneralName] = [.dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))]
        names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(Array(repeating: 0, count: 15) + [1]))))
        for host in hostnames where !["localhost", "127.0.0.1", "::1", "0.0.0.0", "::", ""].contains(host) {
            if let address = ipAddressBytes(host) {
                names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(address))))
            } else {
                names.append(.dnsName(host))
            }
        }
        let subject = try DistinguishedName {
            CommonName("EnclaveKit attestation service (self-signed)")
        }
        let now = Date()
        return try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(825 * 86_400),
            issuer: subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                // Its own issuer: BoringSSL (swift-nio-ssl, so AttestationClient) accepts a self-signed trust anchor
                // only if it may sign certificates; path length 0, so it vouches for nothing but itself.
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names)
            },
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
    }

    static func ipAddressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }
}

extension ServiceError {
    /// A TLS certificate or key that cannot serve.
    static func invalidTLSIdentity(_ message: String) -> ServiceError {
        ServiceError(status: 500, code: "InvalidTLSIdentity", message: message)
    }
}
