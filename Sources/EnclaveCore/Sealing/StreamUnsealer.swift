package import Crypto

/// Opens a sealed stream fed in arbitrary pieces; detects truncation, reordering, and chunks from another stream.
///
/// Whole chunks in a piece are opened straight from the piece into the returned plaintext; only a chunk split
/// across pieces is buffered.
package struct StreamUnsealer: Sendable {
    private let context: GCMContext
    private let aad: [UInt8]
    private let chunkSize: Int
    private var buffer: [UInt8] = []
    private var index: UInt64 = 0
    package private(set) var finished = false

    package init(header: SealedHeader, key: SymmetricKey) throws(EnclaveError) {
        self.context = try GCMContext(key: key)
        self.aad = SealingCipher.chunkAAD(header.bytes)
        self.chunkSize = Int(header.chunkSize)
    }

    /// Feed bytes that follow the header; returns the plaintext of every chunk completed.
    package mutating func feed(_ bytes: some Collection<UInt8>) throws(EnclaveError) -> [UInt8] {
        if buffer.isEmpty {
            var result: Result<(plaintext: [UInt8], used: Int), EnclaveError>?
            bytes.withContiguousStorageIfAvailable { input in
                result = Result { () throws(EnclaveError) in try openChunks(UnsafeRawBufferPointer(input)) }
            }
            if let result {
                let (plaintext, used) = try result.get()
                if used < bytes.count { buffer.append(contentsOf: bytes.dropFirst(used)) }
                return plaintext
            }
        }
        buffer.append(contentsOf: bytes)
        var failure: EnclaveError?
        var plaintext: [UInt8] = []
        var used = 0
        let pending = buffer
        pending.withUnsafeBytes { input in
            do throws(EnclaveError) {
                (plaintext, used) = try openChunks(input)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        buffer.removeFirst(used)
        return plaintext
    }

    /// Open every whole chunk at the front of `input`; the plaintext and how many bytes of `input` it used.
    private mutating func openChunks(
        _ input: UnsafeRawBufferPointer
    ) throws(EnclaveError) -> (plaintext: [UInt8], used: Int) {
        // First the lengths, checked, to size the plaintext once.
        var chunks: [(start: Int, length: Int)] = []
        var position = 0
        var plaintextCount = 0
        while input.count - position >= 4 {
            guard !(finished && chunks.isEmpty) else {
                throw .malformedInput("data after the final chunk of a sealed stream")
            }
            let length = Int(
                UInt32(input[position]) | UInt32(input[position + 1]) << 8 | UInt32(input[position + 2]) << 16
                    | UInt32(input[position + 3]) << 24
            )
            guard length >= SealingCipher.tagSize, length <= chunkSize + SealingCipher.tagSize else {
                throw .malformedInput("sealed chunk length \(length) out of range")
            }
            guard input.count - position - 4 >= length else { break }
            chunks.append((position + 4, length))
            plaintextCount += length - SealingCipher.tagSize
            position += 4 + length
        }
        guard !chunks.isEmpty else { return ([], 0) }
        var failure: EnclaveError?
        var used = 0
        let plaintext = [UInt8](unsafeUninitializedCapacity: plaintextCount) { output, initialized in
            var offset = 0
            for chunk in chunks {
                guard !finished else {
                    failure = .malformedInput("data after the final chunk of a sealed stream")
                    break
                }
                let count = chunk.length - SealingCipher.tagSize
                let target = UnsafeMutableRawBufferPointer(
                    UnsafeMutableBufferPointer(rebasing: output[offset..<offset + count])
                )
                guard open(UnsafeRawBufferPointer(rebasing: input[chunk.start..<chunk.start + chunk.length]), target)
                else {
                    failure = .invalidSignature(
                        "sealed chunk \(index) does not authenticate: dropped, reordered, swapped or tampered"
                    )
                    break
                }
                offset += count
                used = chunk.start + chunk.length
            }
            initialized = plaintextCount
        }
        if let failure { throw failure }
        return (plaintext, used)
    }

    /// Open one chunk (ciphertext and tag) into `output`.
    private mutating func open(_ sealed: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer) -> Bool {
        // Try as a middle chunk, then as the final one: the flag is in the nonce, so only the right guess opens.
        for final in [false, true] {
            let opened = withUnsafeTemporaryAllocation(byteCount: SealingCipher.nonceSize, alignment: 4) { nonce in
                SealingCipher.writeChunkNonce(index, final: final, into: nonce)
                return aad.withUnsafeBytes { aad in
                    context.open(sealed, into: output, nonce: UnsafeRawBufferPointer(nonce), authenticating: aad)
                }
            }
            if opened {
                index += 1
                finished = final
                return true
            }
        }
        return false
    }

    /// Call at the end of input: the final chunk must have been seen and nothing may be left over.
    package func finish() throws(EnclaveError) {
        guard finished else { throw .malformedInput("sealed stream is truncated: no final chunk") }
        guard buffer.isEmpty else { throw .malformedInput("trailing bytes after a sealed stream") }
    }
}
