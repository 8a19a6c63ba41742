import Crypto
import EnclaveKeyRelease
import EnclaveRuntime
import TestInterface

extension TestEnclave {
    /// ``ReleaseKeyProbe``: `releaseKey` with the pinned broker key; answers the key's SHA-256, never the key.
    static func releaseKeyProbe(_ request: ReleaseKeyRequest, context: EnclaveContext) async throws -> ReleaseKeyResult
    {
        let brokerKey: P256.Signing.PublicKey
        do { brokerKey = try P256.Signing.PublicKey(rawRepresentation: request.brokerKey) } catch {
            throw EnclaveError.malformedInput("the broker key is not a P-256 raw public key")
        }
        let key = try await context.releaseKey(
            name: request.name,
            version: request.version,
            brokerKey: brokerKey,
            challenge: request.challenge,
            nonce: request.nonce
        )
        return ReleaseKeyResult(keyID: key.keyID, keyType: key.keyType, digest: Array(SHA256.hash(data: key.bytes)))
    }
}
