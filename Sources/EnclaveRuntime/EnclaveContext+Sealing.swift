internal import Crypto
public import EnclaveCore

extension EnclaveContext {
    /// What ``unseal(_:)`` recovers.
    public struct Unsealed: Sendable {
        /// The sealed data.
        public var plaintext: [UInt8]
        /// The additional data that was authenticated with it (stored in clear in the blob).
        public var additionalData: [UInt8]
        /// The policy it was sealed under.
        public var policy: SealPolicy
        /// The security version it was sealed at.
        public var securityVersion: UInt16
    }

    /// Seal `plaintext` so that only enclaves matching `policy` can read it.
    ///
    /// The key is derived by the platform from its root secret, the identity `policy` names, this enclave's
    /// security version, its debug attribute and a random key ID stored in the blob. `additionalData` is stored in
    /// clear and authenticated. The blob is safe to hand to the host.
    /// - Throws: `EnclaveError` — `limitExceeded` when `additionalData` is over `SealedHeader.maxAdditionalData`; the
    ///   platform's error when it can't derive the key.
    public func seal(_ plaintext: [UInt8], policy: SealPolicy, additionalData: [UInt8] = []) async throws -> [UInt8] {
        let header = try newHeader(kind: .blob, policy: policy, chunkSize: 0, additionalData: additionalData)
        return try SealingCipher.sealBlob(plaintext, header: header, key: await sealKey(for: header))
    }

    /// Open a blob made by ``seal(_:policy:additionalData:)``.
    ///
    /// Succeeds only in an enclave the policy admits, at a security version at least the one the blob was sealed
    /// at. Any change to the blob fails.
    /// - Throws: `EnclaveError` — `malformedInput` when `blob` is not a sealed blob (or is a stream) or is truncated,
    ///   `invalidSignature` when it does not authenticate (another enclave, a key the policy does not admit, or any
    ///   change to its bytes); the platform's error when it refuses the key (a security version above this enclave's).
    public func unseal(_ blob: [UInt8]) async throws -> Unsealed {
        let (header, bodyStart) = try SealedHeader.parse(blob)
        guard header.kind == .blob else { throw EnclaveError.malformedInput("this is a sealed stream, not a blob") }
        let plaintext = try SealingCipher.openBlob(blob, bodyStart: bodyStart, key: await sealKey(for: header))
        return Unsealed(
            plaintext: plaintext,
            additionalData: header.additionalData,
            policy: header.policy,
            securityVersion: header.securityVersion
        )
    }

    /// Start sealing a stream of any length in chunks of `chunkSize` bytes.
    /// - Throws: `EnclaveError` — `invalidConfiguration` when `chunkSize` is outside 4 KiB … 16 MiB, `limitExceeded`
    ///   for oversized `additionalData`; the platform's error when it can't derive the key.
    public func sealStream(
        policy: SealPolicy,
        additionalData: [UInt8] = [],
        chunkSize: Int = 1 << 20,
        progress: (@Sendable (Int) -> Void)? = nil
    ) async throws -> SealingWriter {
        guard let size = UInt32(exactly: chunkSize), SealedHeader.chunkSizes.contains(size) else {
            throw EnclaveError.invalidConfiguration("chunk size must be between 4 KiB and 16 MiB")
        }
        let header = try newHeader(kind: .stream, policy: policy, chunkSize: size, additionalData: additionalData)
        return SealingWriter(
            sealer: try StreamSealer(header: header, key: try await sealKey(for: header)),
            chunkSize: chunkSize,
            progress: progress
        )
    }

    /// Start opening a sealed stream; `prefix` must start with the stream's header (more bytes may follow).
    public func unsealStream(
        _ prefix: [UInt8],
        progress: (@Sendable (Int) -> Void)? = nil
    ) async throws
        -> SealingReader
    {
        let (header, bodyStart) = try SealedHeader.parse(prefix)
        guard header.kind == .stream else { throw EnclaveError.malformedInput("this is a sealed blob, not a stream") }
        var reader = SealingReader(
            unsealer: try StreamUnsealer(header: header, key: try await sealKey(for: header)),
            additionalData: header.additionalData,
            progress: progress
        )
        reader.pending = try reader.feed(prefix[bodyStart...])
        return reader
    }

    private func newHeader(
        kind: SealedHeader.Kind,
        policy: SealPolicy,
        chunkSize: UInt32,
        additionalData: [UInt8]
    )
        throws -> SealedHeader
    {
        guard additionalData.count <= SealedHeader.maxAdditionalData else {
            throw EnclaveError.limitExceeded("additional data over \(SealedHeader.maxAdditionalData) bytes")
        }
        return SealedHeader(
            kind: kind,
            policy: policy,
            securityVersion: identity.securityVersion,
            // BoringSSL's generator: one seeded DRBG, not a system call per 8 bytes.
            keyID: try SealingCipher.randomKeyID(),
            chunkSize: chunkSize,
            additionalData: additionalData
        )
    }

    /// The key of the blob or stream `header` describes: its root (fetched from the platform once per policy and
    /// security version, then cached in enclave memory) through HKDF with the header's key ID.
    func sealKey(for header: SealedHeader) async throws -> SymmetricKey {
        let slot = KeyCache.Slot(policy: header.policy, securityVersion: header.securityVersion)
        let root: SymmetricKey
        if let cached = keyCache.root(slot) {
            root = cached
        } else {
            let request = PlatformProtocol.KeyRequest(
                name: .seal,
                policy: header.policy,
                securityVersion: header.securityVersion
            )
            root = try await platformKey(request)
            keyCache.store(root, for: slot)
        }
        return SealingCipher.blobKey(root: root, keyID: header.keyID)
    }

    /// A 256-bit key from the platform, as a `SymmetricKey`; the decoded bytes are wiped once copied into it.
    func platformKey(_ request: PlatformProtocol.KeyRequest) async throws -> SymmetricKey {
        var bytes = try await platformCall(PlatformProtocol.GetKey.self, request)
        defer { _ = bytes.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        guard bytes.count == 32 else {
            throw EnclaveError.protocolViolation("the platform returned a malformed key")
        }
        return SymmetricKey(data: bytes)
    }

    func platformCall<C: EnclaveCall>(_ call: C.Type, _ input: C.Input) async throws -> C.Output {
        let answer = try await platform.call(name: C.name, argument: encoder.encode(input))
        return try CallCodec.decodeResult(call, answer, decoder: decoder)
    }
}

/// Seals a stream chunk by chunk. Write the ``header`` first, then what each call returns, in order.
///
/// The plaintext written is not copied (the writer holds the arrays until their bytes are sealed) and each chunk is
/// encrypted straight into the array a call returns.
public struct SealingWriter: Sendable {
    var sealer: StreamSealer
    /// The most plaintext one chunk may hold.
    public let chunkSize: Int
    let progress: (@Sendable (Int) -> Void)?
    /// Plaintext bytes sealed so far.
    public private(set) var processedBytes = 0

    init(sealer: StreamSealer, chunkSize: Int, progress: (@Sendable (Int) -> Void)?) {
        self.sealer = sealer
        self.chunkSize = chunkSize
        self.progress = progress
    }

    /// The stream header (authenticated by every chunk).
    public var header: [UInt8] { sealer.header }

    /// Add plaintext; returns the sealed bytes of every chunk it completes.
    public mutating func write(_ plaintext: [UInt8]) throws -> [UInt8] {
        var processed = processedBytes
        let progress = self.progress
        defer { processedBytes = processed }
        return try sealer.write(plaintext) { count in
            processed += count
            progress?(processed)
        }
    }

    /// Seal what remains as the final chunk.
    public mutating func finish() throws -> [UInt8] {
        let count = sealer.pendingBytes
        let out = try sealer.finish()
        processedBytes += count
        progress?(processedBytes)
        return out
    }
}

/// Opens a sealed stream fed in pieces of any size.
public struct SealingReader: Sendable {
    var unsealer: StreamUnsealer
    /// The additional data authenticated with the stream.
    public let additionalData: [UInt8]
    let progress: (@Sendable (Int) -> Void)?
    /// Plaintext recovered by ``EnclaveContext/unsealStream(_:progress:)`` from the bytes after the header; read it
    /// first.
    public internal(set) var pending: [UInt8] = []
    /// Plaintext bytes recovered so far.
    public private(set) var processedBytes = 0

    init(unsealer: StreamUnsealer, additionalData: [UInt8], progress: (@Sendable (Int) -> Void)?) {
        self.unsealer = unsealer
        self.additionalData = additionalData
        self.progress = progress
    }

    /// Feed the next sealed bytes; returns the plaintext of every chunk they complete.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws -> [UInt8] {
        let plaintext = try unsealer.feed(bytes)
        if !plaintext.isEmpty {
            processedBytes += plaintext.count
            progress?(processedBytes)
        }
        return plaintext
    }

    /// Call at the end of the input: fails if the stream was truncated.
    public func finish() throws { try unsealer.finish() }
}
