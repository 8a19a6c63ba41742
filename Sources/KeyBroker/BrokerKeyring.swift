public import Crypto
internal import EnclaveCore
internal import Foundation
public import KeyBrokerInterface
internal import SwiftASN1
internal import X509
public import _CryptoExtras

/// The broker's own keys, shared by every replica and sealed (signer policy) by each: the master key (AES-256, the
/// at-rest envelope of every key), the import key (RSA 3072, bring-your-own keys are wrapped to it) and the
/// signing key (ECDSA P-256, release answers) with its self-signed certificate.
public struct BrokerKeyring: @unchecked Sendable {  // swift-crypto keys are immutable values
    struct Stored: Codable {
        var masterKey: [UInt8]
        var importKey: [UInt8]
        var signingKey: [UInt8]
        var signingCertificate: [UInt8]
        var authorityPins: [UInt8]
    }

    let masterKey: SymmetricKey
    /// The import key.
    public let importKey: _RSA.Encryption.PrivateKey
    /// The signing key.
    public let signingKey: P256.Signing.PrivateKey
    /// The signing key's certificate, DER.
    public let signingCertificate: [UInt8]
    /// The authorities and signing certificates the broker trusted when the keyring was made: a newcomer replica's
    /// join token must be signed with one of them (and one the granter still trusts), whatever its host passes
    /// later. Shared with the keyring by every join; never changed.
    public let authorityPins: AuthorityPins
    /// The authority certificate the granter's token was verified under when this keyring was joined (the newcomer's
    /// host chose the list it was checked with); `.none` for a keyring made in this enclave. Not part of ``bytes``
    /// (a grant never carries it): kept in ``sealedRecord``, and a broker opens the keyring only while it trusts this
    /// certificate (``KeyBroker/init(keyring:authorities:name:)``), so a forged one stays visible in its evidence.
    public let joinedUnder: AuthorityPins

    /// A new keyring for the broker `name`, pinning `authorities` (``KeyBroker/pins(of:)``) for replica joins.
    public static func generate(
        name: String,
        authorities: AuthorityPins = .none
    ) throws(KeyBrokerError) -> BrokerKeyring {
        do {
            let signing = P256.Signing.PrivateKey()
            let import_ = try _RSA.Signing.PrivateKey(keySize: .bits3072)
            let subject = try DistinguishedName {
                CommonName("EnclaveKit Key Broker release signing")
                OrganizationName(String(name.prefix(64)))
            }
            let now = Date()
            let privateKey = Certificate.PrivateKey(signing)
            let certificate = try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: privateKey.publicKey,
                notValidBefore: now.addingTimeInterval(-300),
                notValidAfter: now.addingTimeInterval(10 * 365 * 86400),
                issuer: subject,
                subject: subject,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    KeyUsage(digitalSignature: true)
                },
                issuerPrivateKey: privateKey
            )
            var serializer = DER.Serializer()
            try serializer.serialize(certificate)
            let stored = Stored(
                masterKey: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) },
                importKey: Array(import_.derRepresentation),
                signingKey: Array(signing.rawRepresentation),
                signingCertificate: serializer.serializedBytes,
                authorityPins: authorities.bytes
            )
            return try BrokerKeyring(stored)
        } catch let error as KeyBrokerError {
            throw error
        } catch { throw KeyBrokerError(KeyBrokerError.keyringInvalid, "the keyring could not be made") }
    }

    /// The keyring from its bytes (``bytes``).
    public init(bytes: [UInt8]) throws(KeyBrokerError) {
        let stored: Stored
        do { stored = try BinaryDecoder().decode(Stored.self, from: bytes) } catch {
            throw KeyBrokerError(KeyBrokerError.keyringInvalid, "the keyring does not decode")
        }
        try self.init(stored)
    }

    init(_ stored: Stored) throws(KeyBrokerError) {
        guard stored.masterKey.count == 32,
            let importKey = try? _RSA.Encryption.PrivateKey(derRepresentation: stored.importKey),
            let signingKey = try? P256.Signing.PrivateKey(rawRepresentation: stored.signingKey),
            let certificate = try? Certificate(derEncoded: stored.signingCertificate),
            P256.Signing.PublicKey(certificate.publicKey)?.rawRepresentation == signingKey.publicKey.rawRepresentation,
            let pins = try? AuthorityPins(bytes: stored.authorityPins)
        else { throw KeyBrokerError(KeyBrokerError.keyringInvalid, "the keyring's keys are not consistent") }
        authorityPins = pins
        joinedUnder = .none
        masterKey = SymmetricKey(data: stored.masterKey)
        self.importKey = importKey
        self.signingKey = signingKey
        signingCertificate = stored.signingCertificate
    }

    /// This keyring as joined under `pins` (the granter token's authority and certificate thumbprint).
    public func joined(under pins: AuthorityPins) -> BrokerKeyring {
        BrokerKeyring(self, joinedUnder: pins)
    }

    private init(_ keyring: BrokerKeyring, joinedUnder: AuthorityPins) {
        masterKey = keyring.masterKey
        importKey = keyring.importKey
        signingKey = keyring.signingKey
        signingCertificate = keyring.signingCertificate
        authorityPins = keyring.authorityPins
        self.joinedUnder = joinedUnder
    }

    /// What the broker enclave seals (format 2): `u32` length of ``bytes``, ``bytes``, then ``joinedUnder``
    /// (`AuthorityPins/bytes`); little endian. Secret: seal it, never hand it to the host in clear.
    public var sealedRecord: [UInt8] {
        let keyring = bytes
        var writer = ByteWriter()
        writer.integer(UInt32(keyring.count))
        writer.append(keyring)
        writer.append(joinedUnder.bytes)
        return writer.bytes
    }

    /// The keyring from its ``sealedRecord``, refused unless it is exactly one.
    ///
    /// - Throws: ``KeyBrokerError`` `KeyringInvalid`.
    public init(sealedRecord: [UInt8]) throws(KeyBrokerError) {
        var reader = ByteReader(sealedRecord)
        let keyring: BrokerKeyring
        let pins: AuthorityPins
        do {
            let length = Int(try reader.integer(UInt32.self, "keyring length"))
            guard length <= sealedRecord.count else { throw EnclaveError.malformedInput("the keyring is truncated") }
            keyring = try BrokerKeyring(bytes: Array(try reader.take(length, "keyring")))
            pins = try AuthorityPins.read(&reader)
            try reader.expectEnd("sealed keyring")
        } catch let error as KeyBrokerError {
            throw error
        } catch {
            throw KeyBrokerError(KeyBrokerError.keyringInvalid, "the sealed keyring record does not decode: \(error)")
        }
        self.init(keyring, joinedUnder: pins)
    }

    /// The keyring's bytes (secret: seal them, never hand them to the host in clear).
    public var bytes: [UInt8] {
        let stored = Stored(
            masterKey: masterKey.withUnsafeBytes { Array($0) },
            importKey: Array(importKey.derRepresentation),
            signingKey: Array(signingKey.rawRepresentation),
            signingCertificate: signingCertificate,
            authorityPins: authorityPins.bytes
        )
        return (try? BinaryEncoder().encode(stored)) ?? []
    }

    /// The signing certificate's `kid` and `x5t#S256`: base64url SHA-256 of its DER.
    public var signingKeyID: String { Base64URL.encode(Array(SHA256.hash(data: signingCertificate))) }
}
