import AttestationAPI
import AttestationService
import Crypto
import EnclaveCore
import KeyBrokerInterface
import KeyBrokerService

/// A stand-in for the broker enclave, for the routing, storage and audit tests only (the end-to-end tests use the
/// real broker enclave). Blobs are random bytes; a release is granted to the token `good`, refused as a verified token
/// of the wrong enclave to `verified-refused`, and refused as unverified otherwise.
struct FakeBrokerEngine: BrokerEngine {
    let keyring = "fake-keyring"

    func identity() async throws -> BrokerIdentity {
        BrokerIdentity(
            certificateDER: [0x30, 0x00],
            importKey: KeyBrokerWebKey(kty: "RSA", n: "AQAB", e: "AQAB"),
            evidence: [1, 2, 3],
            runtimeData: Array(#"{"keys":[]}"#.utf8),
            keyringID: keyring
        )
    }

    func createKey(_ request: BrokerCreateKeyRequest) async throws -> StoredKey {
        let key = P256.KeyAgreement.PrivateKey()
        let raw = key.publicKey.rawRepresentation
        let jwk =
            #"{"kty":"EC","crv":"P-256","x":""# + Base64URL.encode(raw.prefix(32)) + #"","y":""#
            + Base64URL.encode(raw.suffix(32)) + #"","d":"must-never-appear"}"#
        return StoredKey(
            name: request.name,
            version: request.version,
            type: request.type,
            keyOperations: request.keyOperations.isEmpty ? ["wrapKey", "unwrapKey"] : request.keyOperations,
            attributes: request.attributes,
            publicKey: request.type == .aes256 ? nil : jwk,
            blob: Array(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
        )
    }

    func importKey(_ request: BrokerImportKeyRequest) async throws -> StoredKey {
        guard request.wrappedKey.count >= 8 else {
            throw EnclaveError.malformedInput("the wrapped key is too short")
        }
        return try await createKey(
            BrokerCreateKeyRequest(
                name: request.name,
                version: request.version,
                type: request.type,
                keyOperations: request.keyOperations,
                attributes: request.attributes
            )
        )
    }

    func release(_ request: BrokerReleaseRequest) async throws -> BrokerReleaseResponse {
        let audit = BrokerReleaseAudit(
            issuer: "https://authority.test",
            tokenID: "jti-1",
            claims: ["x-ms-sgx-mrsigner": "ab"],
            verified: request.target == "good" || request.target == "verified-refused"
        )
        if request.target == "verified-refused" {
            return BrokerReleaseResponse(
                value: nil,
                refusal: BrokerRefusal(code: "PolicyNotSatisfied", message: "no policy rule is satisfied"),
                audit: audit
            )
        }
        if request.target == "good" {
            return BrokerReleaseResponse(value: "header.payload.signature", refusal: nil, audit: audit)
        }
        return BrokerReleaseResponse(
            value: nil,
            refusal: BrokerRefusal(
                code: BrokerRefusal.Code.invalidSignature,
                message: "the token's signature is invalid"
            ),
            audit: audit
        )
    }

    func updatePolicy(_ request: BrokerUpdatePolicyRequest) async throws -> StoredKey {
        var key = request.key
        key.attributes = request.attributes
        key.blob = Array(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
        return key
    }

    func unwrap(_ request: BrokerUnwrapRequest) async throws -> [UInt8] { request.ciphertext.reversed() }

    func wrap(_ request: BrokerWrapRequest) async throws -> [UInt8] { request.plaintext.reversed() }

    func grantJoin(_ request: BrokerJoinGrantRequest) async throws -> BrokerJoinGrantResponse {
        BrokerJoinGrantResponse(
            grant: "grant-for-" + request.key,
            runtimeData: [],
            evidence: AttestationEvidence(provider: "fake", bytes: [])
        )
    }
}
