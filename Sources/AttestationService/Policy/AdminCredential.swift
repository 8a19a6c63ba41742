internal import Crypto
internal import EnclaveCore
internal import Foundation

/// The administrator's bearer token for policy management when no policy signer is configured. The service keeps
/// only its SHA-256 and compares a presented token's digest with it in constant time.
///
/// ``loadOrCreate(path:)`` reads the token file (`<data-dir>/admin-token`), or creates it on first start: 32 random
/// bytes, base64url, in a file that is 0600 from its first byte. A token file that others may read, or that belongs
/// to another user than the service's (or root), is refused.
public struct AdminCredential: Sendable {
    /// SHA-256 of the token.
    public let digest: [UInt8]

    /// The credential whose token is `token`.
    public init(token: String) {
        digest = Array(SHA256.hash(data: Array(token.utf8)))
    }

    /// The credential whose token has SHA-256 `digest` (as stored by another instance).
    public init(digest: [UInt8]) {
        self.digest = digest
    }

    /// Whether `presented` is the token, compared in constant time (over digests, so the length leaks nothing).
    public func matches(_ presented: String) -> Bool {
        let candidate = Array(SHA256.hash(data: Array(presented.utf8)))
        guard candidate.count == digest.count else { return false }
        var difference: UInt8 = 0
        for index in 0..<digest.count { difference |= candidate[index] ^ digest[index] }
        return difference == 0
    }

    /// A new random token.
    public static func generateToken() -> String {
        Base64URL.encode(Array(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }))
    }

    /// A new token written to `path` (0600 from its first byte), replacing the file there.
    public static func rotate(path: String) throws -> String {
        let token = generateToken()
        do {
            try SecretFile.write(Array((token + "\n").utf8), to: path, mode: 0o600, replacing: true)
        } catch {
            throw ServiceError.internal("cannot write the administrator token file \(path): \(error.reason)")
        }
        return token
    }

    /// The token in the file at `path`, created (0600, written to a 0600 temporary and linked into place) when it
    /// does not exist.
    /// - Returns: the token and whether this call created the file.
    /// - Throws: ``ServiceError`` `AdminTokenUnusable` when the file is readable by others, owned by another user
    ///   (neither this one nor root), empty or not text.
    public static func loadOrCreate(path: String) throws -> (token: String, created: Bool) {
        if !FileManager.default.fileExists(atPath: path) {
            let token = generateToken()
            do {
                if try SecretFile.write(Array((token + "\n").utf8), to: path, mode: 0o600, replacing: false) {
                    return (token, true)
                }
            } catch {
                throw ServiceError.internal("cannot create the administrator token file \(path): \(error.reason)")
            }
            // Another instance created it first: use theirs.
        }
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        // Another user's file, however private, is theirs to replace: only this user's or root's is trusted.
        let owner = (attributes[.ownerAccountID] as? NSNumber)?.uint32Value
        guard let owner, owner == geteuid() || owner == 0 else {
            throw ServiceError(
                status: 500,
                code: "AdminTokenUnusable",
                message: "the administrator token file \(path) is owned by uid \(owner.map(String.init) ?? "?"), "
                    + "not by this user (uid \(geteuid())) or root"
            )
        }
        if let mode = attributes[.posixPermissions] as? Int, mode & 0o077 != 0 {
            throw ServiceError(
                status: 500,
                code: "AdminTokenUnusable",
                message: "the administrator token file \(path) has mode \(String(mode, radix: 8)); it must be 0600"
            )
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard data.count <= 4096, let text = String(data: data, encoding: .utf8) else {
            throw ServiceError(
                status: 500,
                code: "AdminTokenUnusable",
                message: "the administrator token file \(path) is not a short text"
            )
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.utf8.count >= 16 else {
            throw ServiceError(
                status: 500,
                code: "AdminTokenUnusable",
                message: "the administrator token in \(path) is shorter than 16 bytes"
            )
        }
        return (token, false)
    }
}
