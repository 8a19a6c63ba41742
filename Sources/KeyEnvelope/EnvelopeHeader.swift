public import EnclaveCore

/// The header of an envelope-encrypted file (`enclave keys encrypt`), in clear and authenticated.
///
/// Layout (little-endian): magic `EKEV`, `u8` format version (1), `u8` wrap algorithm (1 `RSA-OAEP-256`, 2
/// `A256KW`, 3 `ECDH-ES+A256KW`), `u16` reserved (0), `u16` key identifier length and the identifier (UTF-8, the broker key version's
/// `kid`), `u16` wrapped data key length and the wrapped key, a 32-byte random file ID, `u32` chunk size. The body is
/// EnclaveKit's sealed stream (`StreamSealer`: per chunk a `u32` length, AES-256-GCM ciphertext and tag; the nonce is
/// the chunk index and a final flag; the additional data covers this header) under
/// `HKDF-SHA256(ikm: data key, salt: file ID, info: "EnclaveKit.keys.envelope.v1")`. The data key (32 random bytes
/// per file) is wrapped with the broker key: RSA-OAEP-256 with an RSA key's public part (no broker needed),
/// `A256KW` inside the broker for an AES key, a JWE `ECDH-ES+A256KW` to an EC key's public part (no broker needed).
public struct EnvelopeHeader: Hashable, Sendable {
    static let magic: [UInt8] = Array("EKEV".utf8)
    /// The format version this code writes and reads.
    public static let formatVersion: UInt8 = 1
    /// The longest key identifier.
    public static let maxKeyIDBytes = 1024
    /// The longest wrapped data key.
    public static let maxWrappedKeyBytes = 1024

    /// How the data key is wrapped.
    public enum Algorithm: UInt8, Sendable {
        /// RSA-OAEP with SHA-256, to an RSA broker key.
        case rsaOAEP256 = 1
        /// AES key wrap (RFC 3394) under an AES broker key, inside the broker.
        case a256KW = 2
        /// A compact JWE `ECDH-ES+A256KW` / `A256GCM` to an EC broker key's public part (its UTF-8 is the wrapped
        /// key).
        case ecdhESA256KW = 3

        /// The JOSE name (`RSA-OAEP-256`, `A256KW`, `ECDH-ES+A256KW`).
        public var name: String {
            switch self {
            case .rsaOAEP256: "RSA-OAEP-256"
            case .a256KW: "A256KW"
            case .ecdhESA256KW: "ECDH-ES+A256KW"
            }
        }
    }

    /// How the data key is wrapped.
    public var algorithm: Algorithm
    /// The broker key version that wraps the data key (`https://broker/keys/NAME/VERSION`).
    public var keyID: String
    /// The wrapped data key.
    public var wrappedKey: [UInt8]
    /// Random per file: salts the file key.
    public var fileID: Digest32
    /// Plaintext bytes per chunk.
    public var chunkSize: UInt32

    /// A header with the members given.
    public init(algorithm: Algorithm, keyID: String, wrappedKey: [UInt8], fileID: Digest32, chunkSize: UInt32) {
        self.algorithm = algorithm
        self.keyID = keyID
        self.wrappedKey = wrappedKey
        self.fileID = fileID
        self.chunkSize = chunkSize
    }

    /// The encoded header.
    public var bytes: [UInt8] {
        var writer = ByteWriter()
        writer.append(Self.magic)
        writer.integer(Self.formatVersion)
        writer.integer(algorithm.rawValue)
        writer.integer(UInt16(0))
        let kid = Array(keyID.utf8)
        writer.integer(UInt16(kid.count))
        writer.append(kid)
        writer.integer(UInt16(wrappedKey.count))
        writer.append(wrappedKey)
        writer.append(fileID.bytes)
        writer.integer(chunkSize)
        return writer.bytes
    }

    /// The key's name and version from ``keyID`` (its last two path components).
    public var keyNameAndVersion: (name: String, version: String)? {
        let parts = keyID.split(separator: "/")
        guard parts.count >= 2 else { return nil }
        return (String(parts[parts.count - 2]), String(parts[parts.count - 1]))
    }

    /// Parse a header from the front of `bytes`; `nil` when more bytes are needed.
    /// - Throws: `EnclaveError` `malformedInput` for a header that is not one.
    public static func parse(_ bytes: [UInt8]) throws(EnclaveError) -> (header: EnvelopeHeader, bodyStart: Int)? {
        if bytes.count < 4 {
            guard magic.starts(with: bytes) else { throw .malformedInput("not an EnclaveKit envelope file") }
            return nil
        }
        guard Array(bytes.prefix(4)) == magic else { throw .malformedInput("not an EnclaveKit envelope file") }
        var reader = ByteReader(bytes)
        do throws(EnclaveError) {
            _ = try reader.take(4, "magic")
            let version = try reader.integer(UInt8.self, "version")
            guard version == formatVersion else { throw .malformedInput("unsupported envelope version \(version)") }
            let rawAlgorithm = try reader.integer(UInt8.self, "algorithm")
            guard let algorithm = Algorithm(rawValue: rawAlgorithm) else {
                throw .malformedInput("unknown envelope wrap algorithm \(rawAlgorithm)")
            }
            guard try reader.integer(UInt16.self, "reserved") == 0 else {
                throw .malformedInput("unknown envelope flags")
            }
            let kidCount = Int(try reader.integer(UInt16.self, "key ID length"))
            guard kidCount <= maxKeyIDBytes else { throw .malformedInput("envelope key ID too long") }
            guard let keyID = String(validating: try reader.take(kidCount, "key ID"), as: UTF8.self) else {
                throw .malformedInput("envelope key ID is not UTF-8")
            }
            let wrappedCount = Int(try reader.integer(UInt16.self, "wrapped key length"))
            guard wrappedCount <= maxWrappedKeyBytes else { throw .malformedInput("envelope wrapped key too long") }
            let wrapped = Array(try reader.take(wrappedCount, "wrapped key"))
            let fileID = try reader.digest("file ID")
            let chunkSize = try reader.integer(UInt32.self, "chunk size")
            guard SealedHeader.chunkSizes.contains(chunkSize) else {
                throw .malformedInput("envelope chunk size \(chunkSize) out of range")
            }
            return (
                EnvelopeHeader(
                    algorithm: algorithm,
                    keyID: keyID,
                    wrappedKey: wrapped,
                    fileID: fileID,
                    chunkSize: chunkSize
                ),
                reader.position
            )
        } catch {
            // Too short is "need more bytes" unless the fixed part is already over the maximum.
            if bytes.count < 4 + 4 + 2 + maxKeyIDBytes + 2 + maxWrappedKeyBytes + 32 + 4,
                error.reason.hasPrefix("truncated")
            {
                return nil
            }
            throw error
        }
    }
}
