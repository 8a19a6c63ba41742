public import Crypto
public import EnclaveCore

/// The bytes a data owner signs (ES256, with the signing key the contract names for it) to upload an encrypted data
/// set to the clean room's host.
///
/// `EnclaveKit.cleanroom.upload.v2`, a zero byte, then the canonical JSON of `{"contract": <hex ID>, "dataSet",
/// "sha256": <hex digest of the whole .ecr file>, "version": <the upload's version, from 1>}`. The host refuses an
/// upload whose signature does not verify with the data set owner's key (`uploadSignature`): another party (even
/// another owner of the same contract) cannot replace an owner's data, and a file changed in transit or at rest no
/// longer matches the digest the owner signed.
///
/// The version grows with each upload of a data set (the CLI takes the time in milliseconds unless told): the clean
/// room records the highest version it loaded per data set in its sealed, counter-protected state and refuses a
/// lower one (`staleUpload`), so a host can't bring back an upload the owner replaced (rows removed after consent
/// was withdrawn). The signature travels as `<version>.<base64url raw r‖s>` (the `X-Owner-Signature` header, the
/// `.sig` file); a v1 signature (no version) is refused by name (`formatOutdated`).
public enum DataSetUploadSigning {
    static let domain = Array("EnclaveKit.cleanroom.upload.v2".utf8) + [0]
    /// The highest version (the canonical JSON integer's range).
    public static let maxVersion = UInt64(Int64.max)

    /// The message signed for version `version` of an upload of `dataSet` whose ciphertext has SHA-256 `sha256`
    /// (hex).
    public static func message(contractID: Digest32, dataSet: String, sha256: String, version: UInt64) -> [UInt8] {
        domain
            + CanonicalJSON.object([
                "contract": .string(contractID.hex),
                "dataSet": .string(dataSet),
                "sha256": .string(sha256),
                "version": .integer(Int64(clamping: version)),
            ]).canonicalBytes
    }

    /// The owner's signature over version `version` (1 … ``maxVersion``) of an upload, as it travels:
    /// `<version>.<base64url raw r‖s>`.
    public static func sign(
        contractID: Digest32,
        dataSet: String,
        sha256: String,
        version: UInt64,
        key: P256.Signing.PrivateKey
    ) throws -> String {
        guard (1...maxVersion).contains(version) else {
            throw CleanRoomError(.uploadSignature, "the upload version must be 1 to \(maxVersion)")
        }
        let message = message(contractID: contractID, dataSet: dataSet, sha256: sha256, version: version)
        return "\(version)." + Base64URL.encode(Array(try key.signature(for: message).rawRepresentation))
    }

    /// Check that `signature` (`<version>.<base64url raw r‖s>`) is the data set owner's signature over this upload;
    /// answers its version.
    /// - Throws: ``CleanRoomError`` `formatOutdated` for a v1 signature (no version); `uploadSignature` when the
    ///   contract has no such data set or owner, or the signature is malformed or does not verify.
    @discardableResult
    public static func verify(
        _ signature: String,
        contract: Contract,
        dataSet: String,
        sha256: String
    ) throws(CleanRoomError) -> UInt64 {
        guard let set = contract.dataSet(dataSet), let owner = contract.party(set.owner) else {
            throw CleanRoomError(.uploadSignature, "the contract has no data set \(String(dataSet.prefix(100)))")
        }
        guard signature.utf8.count <= 128 else {
            throw CleanRoomError(.uploadSignature, "the upload signature is longer than 128 bytes")
        }
        let parts = signature.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 1, Base64URL.decode(signature)?.count == 64 {
            throw CleanRoomError(
                .formatOutdated,
                "the upload signature is format v1 (no version): the owner signs the upload again with this build"
            )
        }
        guard parts.count == 2, let version = Self.version(parts[0]), let raw = Base64URL.decode(String(parts[1])),
            let parsed = try? P256.Signing.ECDSASignature(rawRepresentation: raw)
        else {
            throw CleanRoomError(
                .uploadSignature,
                "the upload signature is not `<version>.<base64url of a raw ES256 signature>`"
            )
        }
        let message = message(contractID: contract.id, dataSet: dataSet, sha256: sha256, version: version)
        guard owner.signingKey.isValidSignature(parsed, for: message) else {
            throw CleanRoomError(
                .uploadSignature,
                "the upload of \(dataSet) is not signed by its owner \(owner.name) (or its bytes changed)"
            )
        }
        return version
    }

    /// A version as it travels: decimal, no sign, no leading zero, 1 … ``maxVersion``.
    static func version(_ text: Substring) -> UInt64? {
        guard (1...19).contains(text.utf8.count), text.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
            text.utf8.first != 0x30, let value = UInt64(text), value <= maxVersion
        else { return nil }
        return value
    }
}
