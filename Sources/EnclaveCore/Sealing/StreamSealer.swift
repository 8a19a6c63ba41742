package import Crypto

/// Seals a stream chunk by chunk: `u32` length (little-endian) then ciphertext and tag for each, the last one
/// flagged final in its nonce.
///
/// Plaintext is not copied: ``write(_:onChunk:)`` keeps references to the arrays written (copy-on-write) until
/// their bytes are sealed, and encrypts each chunk straight into the returned array. Only a chunk that spans two
/// writes is gathered into a scratch buffer first; writes of whole multiples of the chunk size never are.
package struct StreamSealer: Sendable {
    package let header: [UInt8]
    /// The most plaintext one chunk holds.
    package let chunkSize: Int
    private let context: GCMContext
    private let aad: [UInt8]
    private var index: UInt64 = 0
    private var finished = false
    /// Written plaintext not sealed yet, oldest first; at most one chunk once a write returns.
    private var pending: [ArraySlice<UInt8>] = []
    private var pendingCount = 0
    private var scratch: [UInt8] = []

    package init(header: SealedHeader, key: SymmetricKey) throws(EnclaveError) {
        self.header = header.bytes
        self.chunkSize = Int(header.chunkSize)
        self.context = try GCMContext(key: key)
        self.aad = SealingCipher.chunkAAD(self.header)
    }

    /// Add plaintext; returns the sealed bytes of every chunk it completes. `onChunk` runs after each chunk with
    /// its plaintext size.
    package mutating func write(
        _ plaintext: [UInt8],
        onChunk: (Int) -> Void = { _ in }
    ) throws(EnclaveError) -> [UInt8] {
        guard !plaintext.isEmpty else { return [] }
        precondition(!finished, "the stream is already finished")
        pending.append(plaintext[...])
        pendingCount += plaintext.count
        // Keep at least one byte back so that the final chunk is never empty unless the stream is.
        let chunks = (pendingCount - 1) / chunkSize
        guard chunks > 0 else { return [] }
        let sealedChunk = Self.sealedSize(chunkSize)
        let size = chunks * sealedChunk
        var failure: EnclaveError?
        let out = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            for chunk in 0..<chunks {
                let target = UnsafeMutableRawBufferPointer(
                    UnsafeMutableBufferPointer(rebasing: buffer[(chunk * sealedChunk)..<((chunk + 1) * sealedChunk)])
                )
                do throws(EnclaveError) {
                    try sealNext(chunkSize, final: false, into: target)
                } catch {
                    failure = error
                    break
                }
                onChunk(chunkSize)
            }
            initialized = size
        }
        if let failure { throw failure }
        return out
    }

    /// Seal what remains as the final chunk (empty only if the stream is); returns its sealed bytes.
    package mutating func finish() throws(EnclaveError) -> [UInt8] {
        let count = pendingCount
        let size = Self.sealedSize(count)
        var failure: EnclaveError?
        let out = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            do throws(EnclaveError) {
                try sealNext(count, final: true, into: UnsafeMutableRawBufferPointer(buffer))
            } catch {
                failure = error
            }
            initialized = size
        }
        if let failure { throw failure }
        return out
    }

    /// Plaintext bytes written and not sealed yet.
    package var pendingBytes: Int { pendingCount }

    /// Seal the next `count` pending bytes into `target`: straight from the written array when they lie in one,
    /// else gathered into the scratch buffer.
    private mutating func sealNext(
        _ count: Int,
        final: Bool,
        into target: UnsafeMutableRawBufferPointer
    ) throws(EnclaveError) {
        if pending.isEmpty || pending[0].count >= count {
            let first = pending.first ?? []
            var failure: EnclaveError?
            first.prefix(count).withUnsafeBytes { chunk in
                do throws(EnclaveError) { try seal(chunk, final: final, into: target) } catch { failure = error }
            }
            if let failure { throw failure }
            if !pending.isEmpty {
                pending[0] = first.dropFirst(count)
                if pending[0].isEmpty { pending.removeFirst() }
            }
        } else {
            if scratch.count < count { scratch = [UInt8](repeating: 0, count: count) }
            var filled = 0
            while filled < count, let first = pending.first {
                let take = min(first.count, count - filled)
                scratch.withUnsafeMutableBytes { scratch in
                    first.prefix(take).withUnsafeBytes {
                        UnsafeMutableRawBufferPointer(rebasing: scratch[filled..<filled + take]).copyMemory(from: $0)
                    }
                }
                filled += take
                pending[0] = first.dropFirst(take)
                if pending[0].isEmpty { pending.removeFirst() }
            }
            var failure: EnclaveError?
            let gathered = scratch
            gathered.withUnsafeBytes { gathered in
                do throws(EnclaveError) {
                    try seal(UnsafeRawBufferPointer(rebasing: gathered[..<count]), final: final, into: target)
                } catch {
                    failure = error
                }
            }
            if let failure { throw failure }
        }
        pendingCount -= count
    }

    /// The bytes a chunk of `count` plaintext bytes takes in the stream.
    package static func sealedSize(_ count: Int) -> Int { 4 + count + SealingCipher.tagSize }

    /// Seal one chunk (at most the header's chunk size) into `output`, exactly ``sealedSize(_:)`` bytes; `final` for
    /// the last (possibly empty) one.
    package mutating func seal(
        _ chunk: UnsafeRawBufferPointer,
        final: Bool,
        into output: UnsafeMutableRawBufferPointer
    ) throws(EnclaveError) {
        precondition(!finished, "the stream is already finished")
        precondition(output.count == Self.sealedSize(chunk.count))
        guard let length = UInt32(exactly: chunk.count + SealingCipher.tagSize) else {
            throw .limitExceeded("chunk of \(chunk.count) bytes")
        }
        withUnsafeBytes(of: length.littleEndian) { output.copyMemory(from: $0) }
        let sealed = withUnsafeTemporaryAllocation(byteCount: SealingCipher.nonceSize, alignment: 4) { nonce in
            SealingCipher.writeChunkNonce(index, final: final, into: nonce)
            return aad.withUnsafeBytes { aad in
                context.seal(
                    chunk,
                    into: UnsafeMutableRawBufferPointer(rebasing: output[4...]),
                    nonce: UnsafeRawBufferPointer(nonce),
                    authenticating: aad
                )
            }
        }
        guard sealed else { throw .sandboxFailed("AES-GCM sealing failed") }
        index += 1
        finished = final
    }

    /// Seal one chunk (at most the header's chunk size) into a new array; `final` for the last (possibly empty) one.
    package mutating func seal(_ chunk: ArraySlice<UInt8>, final: Bool) throws(EnclaveError) -> [UInt8] {
        let size = Self.sealedSize(chunk.count)
        var failure: EnclaveError?
        let out = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            chunk.withUnsafeBytes { chunk in
                do throws(EnclaveError) {
                    try seal(chunk, final: final, into: UnsafeMutableRawBufferPointer(buffer))
                } catch {
                    failure = error
                }
            }
            initialized = size
        }
        if let failure { throw failure }
        return out
    }
}
