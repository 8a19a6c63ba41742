import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import KeyBroker
import KeyBrokerInterface
import KeyReleaseFormats
import Testing
import _CryptoExtras

/// The broker's host can call the unwrap and wrap ECALLs (and `POST …/unwrapkey`, holding the administrator token)
/// with any stored key. An owner who imported a key under a release policy encrypts data keys to its public part
/// (`enclave keys encrypt`: RSA-OAEP-256, or an ECDH-ES+A256KW JWE to an EC key); unless the key's operations, as
/// its envelope binds them, allow an unwrap, the enclave refuses it by name, so the host can't take the data keys
/// the release policy keeps for the enclaves it names.
@Suite("KeyBroker: unwrap and wrap need the key's operations", .serialized)
struct KeyOperationAttackTests {
    /// A release policy naming a signer that is not the broker's host.
    static let ownerPolicy = TestKeys.policy(authority: "https://owner-authority.example", minimumSVN: 1)
    static let dataKey: [UInt8] = (0..<32).map { UInt8(($0 * 11 + 5) & 0xFF) }

    static func broker() throws -> KeyBroker {
        try KeyBroker(
            keyring: try BrokerKeyring.generate(name: "https://broker.example"),
            authorities: [TestAuthority.shared.brokerAuthority],
            name: "https://broker.example"
        )
    }

    static func importKey(_ broker: KeyBroker) throws -> _RSA.Encryption.PublicKey {
        let importJWK = try JSONDecoder().decode(WrapJWK.self, from: Data(broker.importKeyJWK.utf8))
        guard case .rsa(let importKey) = try importJWK.wrapTarget() else {
            throw KeyBrokerError("test", "the import key is not RSA")
        }
        return importKey
    }

    /// The owner's import request for `type` under the owner's policy, with `operations` (empty: the defaults).
    static func request(
        _ name: String,
        type: BrokerKeyType,
        operations: [String]
    ) -> BrokerImportKeyRequest {
        BrokerImportKeyRequest(
            name: name,
            version: "v1",
            type: type,
            wrappedKey: [],
            keyOperations: operations,
            attributes: BrokerKeyAttributes(exportable: true, releasePolicy: ownerPolicy, immutable: false)
        )
    }

    /// `dataKey` encrypted to an RSA key's public part as `enclave keys encrypt` does (RSA-OAEP-256).
    static func wrapRSA(_ dataKey: [UInt8], to key: _RSA.Signing.PrivateKey) throws -> [UInt8] {
        let publicKey = try _RSA.Encryption.PublicKey(derRepresentation: key.publicKey.derRepresentation)
        return Array(try publicKey.encrypt(dataKey, padding: .PKCS1_OAEP_SHA256))
    }

    /// `dataKey` in an ECDH-ES+A256KW JWE to a P-256 key's public part, as `enclave keys encrypt` does.
    static func wrapECDHES(_ dataKey: [UInt8], to key: P256.Signing.PrivateKey) throws -> [UInt8] {
        let target = try P256.KeyAgreement.PublicKey(rawRepresentation: key.publicKey.rawRepresentation)
        return Array(try ECDHESJWE.encrypt(dataKey, to: .p256(target)).utf8)
    }

    /// The code `body` is refused with; records an issue when it answers.
    static func refusal(_ body: () throws(KeyBrokerError) -> [UInt8]) -> String? {
        do {
            let answer = try body()
            Issue.record("the broker answered \(answer.count) bytes")
            return nil
        } catch { return error.code }
    }

    /// The attack: an RSA key the owner imported for encryption only (`encrypt`, `wrapKey`) under its policy; the
    /// host unwraps a data key encrypted to it.
    @Test func anImportedRSAKeyForEncryptionOnlyRefusesTheHostsUnwrap() throws {
        let broker = try Self.broker()
        let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let stored = try broker.importKey(
            try Self.request("owner-rsa", type: .rsa2048, operations: ["encrypt", "wrapKey"])
                .wrapping(Array(rsa.derRepresentation), to: try Self.importKey(broker), for: broker)
        )
        let wrapped = try Self.wrapRSA(Self.dataKey, to: rsa)
        let code = Self.refusal { () throws(KeyBrokerError) in
            try broker.unwrap(BrokerUnwrapRequest(key: stored, algorithm: "RSA-OAEP-256", ciphertext: wrapped))
        }
        #expect(code == KeyBrokerError.keyOperationNotAllowed)
        // Wrapping with it stays allowed (its operations name it), and gives nothing away.
        let rewrapped = try broker.wrap(
            BrokerWrapRequest(key: stored, algorithm: "RSA-OAEP-256", plaintext: Self.dataKey)
        )
        let decrypting = try _RSA.Encryption.PrivateKey(derRepresentation: rsa.derRepresentation)
        #expect(Array(try decrypting.decrypt(rewrapped, padding: .PKCS1_OAEP_SHA256)) == Self.dataKey)
    }

    /// The attack with an imported P-256 key (default operations: sign, verify) and an ECDH-ES JWE to it.
    @Test func anImportedP256KeyRefusesTheHostsECDHESUnwrap() throws {
        let broker = try Self.broker()
        let ec = P256.Signing.PrivateKey()
        let stored = try broker.importKey(
            try Self.request("owner-ec", type: .ecP256, operations: [])
                .wrapping(Array(ec.derRepresentation), to: try Self.importKey(broker), for: broker)
        )
        #expect(stored.keyOperations == ["sign", "verify"])
        let jwe = try Self.wrapECDHES(Self.dataKey, to: ec)
        let code = Self.refusal { () throws(KeyBrokerError) in
            try broker.unwrap(BrokerUnwrapRequest(key: stored, algorithm: "ECDH-ES+A256KW", ciphertext: jwe))
        }
        #expect(code == KeyBrokerError.keyOperationNotAllowed)
    }

    /// An owner's client that names no operations (older clients send `[]`): under a release policy the key gets its
    /// type's operations without `decrypt` and `unwrapKey`.
    @Test func anImportUnderAPolicyWithoutOperationsLeavesOutUnwrap() throws {
        let broker = try Self.broker()
        let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let stored = try broker.importKey(
            try Self.request("owner-default", type: .rsa2048, operations: [])
                .wrapping(Array(rsa.derRepresentation), to: try Self.importKey(broker), for: broker)
        )
        #expect(Set(stored.keyOperations) == ["encrypt", "wrapKey", "sign", "verify"])
        let wrapped = try Self.wrapRSA(Self.dataKey, to: rsa)
        let code = Self.refusal { () throws(KeyBrokerError) in
            try broker.unwrap(BrokerUnwrapRequest(key: stored, algorithm: "RSA-OAEP-256", ciphertext: wrapped))
        }
        #expect(code == KeyBrokerError.keyOperationNotAllowed)
        // AES under a policy: wrap (A256KW) works, unwrap is refused.
        let aes = (0..<32).map { UInt8($0) }
        let aesKey = try broker.importKey(
            try Self.request("owner-aes", type: .aes256, operations: [])
                .wrapping(aes, to: try Self.importKey(broker), for: broker)
        )
        #expect(Set(aesKey.keyOperations) == ["encrypt", "wrapKey"])
        let aesWrapped = try broker.wrap(BrokerWrapRequest(key: aesKey, algorithm: "A256KW", plaintext: Self.dataKey))
        let aesCode = Self.refusal { () throws(KeyBrokerError) in
            try broker.unwrap(BrokerUnwrapRequest(key: aesKey, algorithm: "A256KW", ciphertext: aesWrapped))
        }
        #expect(aesCode == KeyBrokerError.keyOperationNotAllowed)
    }

    /// The owner opts in (`--allow-admin-unwrap`: `unwrapKey` named in the operations its intent binds).
    @Test func anOwnerWhoNamesUnwrapKeyAllowsTheAdministratorsUnwrap() throws {
        let broker = try Self.broker()
        let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let stored = try broker.importKey(
            try Self.request("owner-opt-in", type: .rsa2048, operations: ["encrypt", "unwrapKey", "wrapKey"])
                .wrapping(Array(rsa.derRepresentation), to: try Self.importKey(broker), for: broker)
        )
        let wrapped = try Self.wrapRSA(Self.dataKey, to: rsa)
        let unwrapped = try broker.unwrap(
            BrokerUnwrapRequest(key: stored, algorithm: "RSA-OAEP-256", ciphertext: wrapped)
        )
        #expect(unwrapped == Self.dataKey)
    }

    /// Keys the operator creates keep every operation of their type (the administrator owns them), with or without
    /// a release policy; and a key imported before this check (its envelope binds the old defaults, unwrap included)
    /// keeps working as its envelope says.
    @Test func operatorKeysAndKeysStoredBeforeKeepTheirOperations() throws {
        let broker = try Self.broker()
        for policy in [nil, Self.ownerPolicy] {
            let created = try broker.createKey(
                BrokerCreateKeyRequest(
                    name: "operator-aes",
                    version: "v1",
                    type: .aes256,
                    attributes: BrokerKeyAttributes(exportable: policy != nil, releasePolicy: policy, immutable: false)
                )
            )
            #expect(created.keyOperations == ["encrypt", "decrypt", "wrapKey", "unwrapKey"])
            let wrapped = try broker.wrap(BrokerWrapRequest(key: created, algorithm: "A256KW", plaintext: Self.dataKey))
            let unwrapped = try broker.unwrap(
                BrokerUnwrapRequest(key: created, algorithm: "A256KW", ciphertext: wrapped)
            )
            #expect(unwrapped == Self.dataKey)
        }
        // An operator's EC key: ECDH-ES+A256KW JWEs to it unwrap in the broker (`keys decrypt`).
        let ecCreated = try broker.createKey(
            BrokerCreateKeyRequest(
                name: "operator-ec",
                version: "v1",
                type: .ecP256,
                attributes: BrokerKeyAttributes(exportable: true, releasePolicy: Self.ownerPolicy, immutable: false)
            )
        )
        #expect(ecCreated.keyOperations == ["sign", "verify", "unwrapKey"])
        let jwk = try JSONDecoder().decode(
            [String: String].self,
            from: Data(try #require(ecCreated.publicKey).utf8)
        )
        let x = try #require(jwk["x"].flatMap { Base64URL.decode($0) })
        let y = try #require(jwk["y"].flatMap { Base64URL.decode($0) })
        let ecTarget = try P256.KeyAgreement.PublicKey(rawRepresentation: x + y)
        let jwe = Array(try ECDHESJWE.encrypt(Self.dataKey, to: .p256(ecTarget)).utf8)
        #expect(
            try broker.unwrap(BrokerUnwrapRequest(key: ecCreated, algorithm: "ECDH-ES+A256KW", ciphertext: jwe))
                == Self.dataKey
        )
        // Sealed with the operations the broker used to give every imported RSA key, in their order.
        let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let earlier = try broker.importKey(
            try Self.request(
                "owner-earlier",
                type: .rsa2048,
                operations: ["encrypt", "decrypt", "wrapKey", "unwrapKey", "sign", "verify"]
            )
            .wrapping(Array(rsa.derRepresentation), to: try Self.importKey(broker), for: broker)
        )
        let wrapped = try Self.wrapRSA(Self.dataKey, to: rsa)
        #expect(
            try broker.unwrap(BrokerUnwrapRequest(key: earlier, algorithm: "RSA-OAEP-256", ciphertext: wrapped))
                == Self.dataKey
        )
    }

    /// The host adds `unwrapKey` to a stored key's operations: the envelope binds them, so the blob no longer opens.
    @Test func theHostCannotAddAnOperationToAStoredKey() throws {
        let broker = try Self.broker()
        let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        var stored = try broker.importKey(
            try Self.request("owner-tampered", type: .rsa2048, operations: ["encrypt", "wrapKey"])
                .wrapping(Array(rsa.derRepresentation), to: try Self.importKey(broker), for: broker)
        )
        stored.keyOperations += ["unwrapKey"]
        let wrapped = try Self.wrapRSA(Self.dataKey, to: rsa)
        let code = Self.refusal { () throws(KeyBrokerError) in
            try broker.unwrap(BrokerUnwrapRequest(key: stored, algorithm: "RSA-OAEP-256", ciphertext: wrapped))
        }
        #expect(code == BrokerRefusal.Code.keyBlobInvalid)
    }

    /// Through the broker enclave: the host calls the `BrokerUnwrap` ECALL directly with the owner's RSA key
    /// (encryption only) and with its P-256 key (defaults); both refused by name.
    @Test func theBrokerEnclaveRefusesTheHostsUnwrapECALL() async throws {
        let platform = try BrokerEnclaveFixture.platform()
        let enclave = try await BrokerEnclaveFixture.load(
            try BrokerEnclaveFixture.sign(key: P256.Signing.PrivateKey(), securityVersion: 1),
            on: platform
        )
        defer { Task { await enclave.terminate() } }
        let opened = try await KeyBrokerEnclaveTests.open(enclave, sealed: nil)
        let importKey = try KeyBrokerEnclaveTests.rsaImportKey(opened)
        let authorities = [TestAuthority.shared.brokerAuthority]
        let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let rsaKey = try await enclave.call(
            BrokerImportKey.self,
            try Self.request("owner-rsa", type: .rsa2048, operations: ["encrypt", "wrapKey"])
                .wrapping(Array(rsa.derRepresentation), to: importKey, trusting: authorities)
        )
        let ec = P256.Signing.PrivateKey()
        let ecKey = try await enclave.call(
            BrokerImportKey.self,
            try Self.request("owner-ec", type: .ecP256, operations: [])
                .wrapping(Array(ec.derRepresentation), to: importKey, trusting: authorities)
        )
        let attempts = [
            BrokerUnwrapRequest(
                key: rsaKey,
                algorithm: "RSA-OAEP-256",
                ciphertext: try Self.wrapRSA(Self.dataKey, to: rsa)
            ),
            BrokerUnwrapRequest(
                key: ecKey,
                algorithm: "ECDH-ES+A256KW",
                ciphertext: try Self.wrapECDHES(Self.dataKey, to: ec)
            ),
        ]
        for attempt in attempts {
            do {
                let answer = try await enclave.call(BrokerUnwrap.self, attempt)
                Issue.record("the enclave unwrapped \(answer.count) bytes with \(attempt.key.name)")
            } catch let error as EnclaveError {
                #expect(error.code == .malformedInput, "\(error)")
                #expect(error.reason.hasPrefix(KeyBrokerError.keyOperationNotAllowed + ": "), "\(error)")
            }
        }
    }
}
