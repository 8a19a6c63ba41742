/// The versioned, authenticated header in front of every sealed blob and sealed stream.
///
/// Layout (little-endian): magic `EKSL`, `u8` version 1, `u8` kind (1 blob, 2 stream), `u8` policy, `u8` flags (0),
/// `u16` security version, 32-byte key ID, `u32` chunk size (0 for a blob), `u32` additional-data length, the
/// additional data. The header is authenticated as AES-GCM additional data, so changing any field fails the
/// unseal.
public struct SealedHeader: Hashable, Sendable {
    /// What follows the header: one AES-GCM message, or a stream of fixed-size chunks.
    public enum Kind: UInt8, Sendable {
        /// A single AES-256-GCM message: nonce, ciphertext, tag. ``SealedHeader/chunkSize`` is 0.
        case blob = 1
        /// A sequence of AES-256-GCM chunks of ``SealedHeader/chunkSize`` plaintext bytes each.
        case stream = 2
    }

    static let magic: [UInt8] = Array("EKSL".utf8)
    /// The longest additional data a blob may carry.
    public static let maxAdditionalData = 1 << 20
    /// The chunk sizes a stream may use.
    public static let chunkSizes: ClosedRange<UInt32> = 4096...(16 << 20)

    /// Whether a blob or a stream follows.
    public var kind: Kind
    /// The identity the sealing key is bound to: only an enclave of that identity can derive the key again.
    public var policy: SealPolicy
    /// The security version the key was derived for: the sealing enclave's own.
    ///
    /// Under ``SealPolicy/signerID`` an enclave with a lower security version cannot unseal.
    public var securityVersion: UInt16
    /// 32 random bytes chosen when sealing; the blob's key is derived from the platform's sealing key and this ID,
    /// so no two blobs share a key.
    public var keyID: Digest32
    /// Plaintext bytes per chunk of a stream (within ``chunkSizes``); 0 for a blob.
    public var chunkSize: UInt32
    /// Caller data bound to the blob, at most ``maxAdditionalData`` bytes.
    ///
    /// It is authenticated but **not encrypted**: anyone holding the blob can read it. Put nothing secret here.
    public var additionalData: [UInt8]

    package init(
        kind: Kind,
        policy: SealPolicy,
        securityVersion: UInt16,
        keyID: Digest32,
        chunkSize: UInt32,
        additionalData: [UInt8]
    ) {
        self.kind = kind
        self.policy = policy
        self.securityVersion = securityVersion
        self.keyID = keyID
        self.chunkSize = chunkSize
        self.additionalData = additionalData
    }

    /// The encoded header.
    public var bytes: [UInt8] {
        var writer = ByteWriter()
        writer.append(Self.magic)
        writer.integer(UInt8(1))
        writer.integer(kind.rawValue)
        writer.integer(policy.rawValue)
        writer.integer(UInt8(0))
        writer.integer(securityVersion)
        writer.append(keyID.bytes)
        writer.integer(chunkSize)
        writer.integer(UInt32(additionalData.count))
        writer.append(additionalData)
        return writer.bytes
    }

    /// Parse a header from the front of `bytes`; returns it and where the body starts.
    public static func parse(_ bytes: [UInt8]) throws(EnclaveError) -> (header: SealedHeader, bodyStart: Int) {
        var reader = ByteReader(bytes)
        guard Array(try reader.take(4, "magic")) == magic else {
            throw .malformedInput("not a sealed blob (bad magic)")
        }
        let version = try reader.integer(UInt8.self, "version")
        guard version == 1 else { throw .malformedInput("unsupported sealed blob version \(version)") }
        guard let kind = Kind(rawValue: try reader.integer(UInt8.self, "kind")) else {
            throw .malformedInput("unknown sealed blob kind")
        }
        guard let policy = SealPolicy(rawValue: try reader.integer(UInt8.self, "policy")) else {
            throw .malformedInput("unknown sealing policy")
        }
        guard try reader.integer(UInt8.self, "flags") == 0 else { throw .malformedInput("unknown sealed blob flags") }
        let securityVersion = try reader.integer(UInt16.self, "security version")
        let keyID = try reader.digest("key ID")
        let chunkSize = try reader.integer(UInt32.self, "chunk size")
        switch kind {
        case .blob:
            guard chunkSize == 0 else { throw .malformedInput("a sealed blob has no chunk size") }
        case .stream:
            guard chunkSizes.contains(chunkSize) else { throw .malformedInput("chunk size \(chunkSize) out of range") }
        }
        let length = Int(try reader.integer(UInt32.self, "additional data length"))
        guard length <= maxAdditionalData else {
            throw .limitExceeded("additional data over \(maxAdditionalData) bytes")
        }
        let additionalData = Array(try reader.take(length, "additional data"))
        let header = SealedHeader(
            kind: kind,
            policy: policy,
            securityVersion: securityVersion,
            keyID: keyID,
            chunkSize: chunkSize,
            additionalData: additionalData
        )
        return (header, reader.position)
    }
}
