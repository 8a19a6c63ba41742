public import Crypto
public import EnclaveCore
public import EnclaveRuntime
internal import Foundation
internal import KeyBrokerInterface
internal import KeyReleaseFormats

/// A key the broker released to this enclave.
public struct ReleasedKey: Sendable {
    /// The key's `kid` at the broker (`https://broker/keys/name/version`).
    public let keyID: String
    /// Key Vault's type: `oct-HSM`, `RSA-HSM`, `EC-HSM`.
    public let keyType: String
    /// The key's operations.
    public let keyOperations: [String]
    /// The key's bytes: an AES key's 32 raw bytes, an RSA or EC private key's PKCS #8 DER. Secret: keep them in the
    /// enclave.
    public let bytes: [UInt8]

    /// An AES key's bytes as a `SymmetricKey`, `nil` for other types.
    public var symmetricKey: SymmetricKey? { keyType == "oct-HSM" ? SymmetricKey(data: bytes) : nil }
}

extension EnclaveContext {
    /// Gets a key released by the key broker to this enclave (issue 12 item 7).
    ///
    /// Makes an ephemeral P-256 key inside the enclave; makes evidence binding it (report data = SHA-256 of the
    /// JSON runtime data `{"keys": [its JWK], "challenge"?, "nonce"?}`, as the attestation service expects); has
    /// the host carry the evidence to the attestation service (``KeyReleaseAttest``, answering the token) and the
    /// token to the broker (``KeyReleaseFetch``, answering the release JWS); checks the answer's signature with the
    /// broker's pinned signing key, that it names the key asked for and that it is wrapped to this enclave's
    /// ephemeral key; and unwraps it here. The host only ever carries opaque bytes: the evidence and token bind a
    /// key only this enclave holds, and a host-substituted answer fails the broker's signature.
    ///
    /// - Parameters:
    ///   - name: The key's name.
    ///   - version: The key's version; `nil` for the broker's current one.
    ///   - brokerKey: The broker's release signing key (from its certificate, checked against its attestation once,
    ///     then pinned in the enclave's code or configuration). Never taken from the host at release time.
    ///   - challenge: The attestation service's challenge, if the host fetched one (bound into the evidence).
    ///   - nonce: A nonce for the broker to check against the token (`x-ms-runtime.nonce`).
    /// - Throws: `EnclaveError.invalidSignature` when the answer is not the broker's, names another key or does not
    ///   unwrap; `malformedInput` when it is not a release answer; the OCALLs' errors (the host's refusals, among
    ///   them the broker's refusal).
    public func releaseKey(
        name: String,
        version: String? = nil,
        brokerKey: P256.Signing.PublicKey,
        challenge: String? = nil,
        nonce: String? = nil
    ) async throws -> ReleasedKey {
        let ephemeral = P256.KeyAgreement.PrivateKey()
        var runtime: [String: RuntimeValue] = ["keys": .keys([WrapJWK(p256: ephemeral.publicKey, kid: "release")])]
        if let challenge { runtime["challenge"] = .text(challenge) }
        if let nonce { runtime["nonce"] = .text(nonce) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let runtimeData = Array(try encoder.encode(runtime))
        let evidence = try await self.evidence(reportData: Self.reportData(hashing: runtimeData))
        let token = try await ocall(
            KeyReleaseAttest.self,
            KeyReleaseAttestRequest(evidence: evidence, runtimeData: runtimeData)
        )
        let jws = try await ocall(
            KeyReleaseFetch.self,
            KeyReleaseFetchRequest(name: name, version: version, token: token, nonce: nonce)
        )
        return try Self.unwrapRelease(jws, name: name, version: version, brokerKey: brokerKey, key: ephemeral)
    }

    /// Checks and unwraps a release answer made for `key` (what ``releaseKey(name:version:brokerKey:challenge:nonce:)``
    /// does with the broker's answer).
    public static func unwrapRelease(
        _ jws: String,
        name: String,
        version: String?,
        brokerKey: P256.Signing.PublicKey,
        key: P256.KeyAgreement.PrivateKey
    ) throws(EnclaveError) -> ReleasedKey {
        let answer: ReleaseAnswer
        do { answer = try ReleaseAnswer(jws: jws, brokerKey: brokerKey) } catch {
            if error.code == .integrity { throw .invalidSignature("the release answer is not the broker's: \(error)") }
            throw .malformedInput("the release answer is not usable: \(error)")
        }
        guard let keys = answer.keyID.range(of: "/keys/", options: .backwards) else {
            throw .invalidSignature("the release answer names no key")
        }
        let named = answer.keyID[keys.upperBound...].split(separator: "/", omittingEmptySubsequences: false)
        guard named.count == 2, named[0] == name, version == nil || named[1] == version! else {
            throw .invalidSignature("the release answer is for another key")
        }
        do {
            return ReleasedKey(
                keyID: answer.keyID,
                keyType: answer.keyType,
                keyOperations: answer.keyOperations,
                bytes: try answer.unwrap(with: key)
            )
        } catch { throw .invalidSignature("the released key does not unwrap with this enclave's key: \(error)") }
    }
}

/// A member of the runtime data.
private enum RuntimeValue: Encodable {
    case keys([WrapJWK])
    case text(String)

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .keys(let keys): try container.encode(keys)
        case .text(let text): try container.encode(text)
        }
    }
}
