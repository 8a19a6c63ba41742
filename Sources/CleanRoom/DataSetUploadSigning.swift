public import Crypto
public import EnclaveCore

/// The bytes a data owner signs (ES256, with the signing key the contract names for it) to upload an encrypted data
/// set to the clean room's host.
///
/// `EnclaveKit.cleanroom.upload.v1`, a zero byte, then the canonical JSON of `{"contract": <hex ID>, "dataSet",
/// "sha256": <hex digest of the whole .ecr file>}`. The host refuses an upload whose signature does not verify with
/// the data set owner's key (`uploadSignature`): another party (even another owner of the same contract) cannot
/// replace an owner's data, and a file changed in transit or at rest no longer matches the digest the owner signed.
public enum DataSetUploadSigning {
    static let domain = Array("EnclaveKit.cleanroom.upload.v1".utf8) + [0]

    /// The message signed for an upload of `dataSet` whose ciphertext has SHA-256 `sha256` (hex).
    public static func message(contractID: Digest32, dataSet: String, sha256: String) -> [UInt8] {
        domain
            + CanonicalJSON.object([
                "contract": .string(contractID.hex),
                "dataSet": .string(dataSet),
                "sha256": .string(sha256),
            ]).canonicalBytes
    }

    /// The owner's signature (raw `r ‖ s`, base64url) over an upload.
    public static func sign(
        contractID: Digest32,
        dataSet: String,
        sha256: String,
        key: P256.Signing.PrivateKey
    ) throws -> String {
        let message = message(contractID: contractID, dataSet: dataSet, sha256: sha256)
        return Base64URL.encode(Array(try key.signature(for: message).rawRepresentation))
    }

    /// Whether `signature` (base64url raw `r ‖ s`) is the data set owner's signature over this upload.
    /// - Throws: ``CleanRoomError`` `uploadSignature` when the contract has no such data set or owner, or the
    ///   signature is malformed or does not verify.
    public static func verify(
        _ signature: String,
        contract: Contract,
        dataSet: String,
        sha256: String
    ) throws(CleanRoomError) {
        guard let set = contract.dataSet(dataSet), let owner = contract.party(set.owner) else {
            throw CleanRoomError(.uploadSignature, "the contract has no data set \(String(dataSet.prefix(100)))")
        }
        guard signature.utf8.count <= 128, let raw = Base64URL.decode(signature),
            let parsed = try? P256.Signing.ECDSASignature(rawRepresentation: raw)
        else {
            throw CleanRoomError(.uploadSignature, "the upload signature is not base64url of a raw ES256 signature")
        }
        let message = message(contractID: contract.id, dataSet: dataSet, sha256: sha256)
        guard owner.signingKey.isValidSignature(parsed, for: message) else {
            throw CleanRoomError(
                .uploadSignature,
                "the upload of \(dataSet) is not signed by its owner \(owner.name) (or its bytes changed)"
            )
        }
    }
}
