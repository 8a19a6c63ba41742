import Crypto
import EnclaveCore
import Foundation
import Testing

/// The sealed format stays what v1 wrote: blobs and streams sealed by the code before the in-place rewrite open with
/// the current code, and what the current code seals opens with the old code, byte for byte the same format.
@Suite("Sealed format compatibility")
struct SealingFormatTests {
    static let root = SymmetricKey(data: (0..<32).map { UInt8($0) })
    static let keyID = try! Digest32(bytes: (0x40..<0x60).map { UInt8($0) })  // swift-format-ignore
    static let blobPlaintext = (0..<100).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
    static let streamPlaintext = (0..<100).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) }

    /// A blob sealed by the v1 code (HKDF-SHA256 blob key, `AES.GCM.seal` with the header as additional data) under
    /// ``root`` and ``keyID``, signer policy, security version 3, additional data "vector-aad", nonce a0…ab; the same
    /// bytes come from an independent implementation (Python `cryptography`, HKDF and AESGCM).
    static let blobVector = [
        "454b534c010102000300404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f000000000a000000",
        "766563746f722d616164a0a1a2a3a4a5a6a7a8a9aaabc9cd50b8180aca0d0ebdbaff33baea3ee5271ede5ec93a6401ba4493",
        "e81bc2c9ce54c2a6146b63562b76886d00afc07b578a834611847762a934659e010ee4f6d0ca5c7f0f4b742fc70689b409fd",
        "dbe1aee867823e7a562089d2e76c6cf728bd9424673aca6b3cfb9ca8abb556b0bc48b0a4585c",
    ].joined()

    /// A one-chunk stream (chunk size 4096, additional data "stream-aad") sealed the same way.
    static let streamVector = [
        "454b534c010202000300404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f001000000a000000",
        "73747265616d2d6161647400000044956c453955b0b7adbca80b18dae7ffe747cc19b7557355b8914faee85ef197847c40ae",
        "d34e4f9cda34baf38b24e84f086d77e7c53a038712c4a4f7ec0b6b6ae46a7f5801a093a003524dab7dcd96eb654212b01e83",
        "4c9f7d148952922ef8af33bdca7a4390646b9aab7bc327ce1b0709c517a3",
    ].joined()

    static func bytes(_ hex: String) throws -> [UInt8] { try #require(Hex.decode(hex)) }

    /// The sealing code as it was before the rewrite, kept as the reference: swift-crypto's HKDF and AES.GCM.
    enum Legacy {
        static func blobKey(root: SymmetricKey, keyID: Digest32) -> SymmetricKey {
            HKDF<SHA256>.deriveKey(
                inputKeyMaterial: root,
                salt: keyID.bytes,
                info: Array("EnclaveKit.seal.blob.v1".utf8),
                outputByteCount: 32
            )
        }

        static func sealBlob(
            _ plaintext: [UInt8],
            header: SealedHeader,
            key: SymmetricKey,
            nonce: AES.GCM.Nonce?
        )
            throws -> [UInt8]
        {
            let box = try AES.GCM.seal(plaintext, using: key, nonce: nonce, authenticating: header.bytes)
            return header.bytes + Array(try #require(box.combined))
        }

        static func openBlob(_ blob: [UInt8], bodyStart: Int, key: SymmetricKey) throws -> [UInt8] {
            let box = try AES.GCM.SealedBox(combined: blob[bodyStart...])
            return Array(try AES.GCM.open(box, using: key, authenticating: blob[0..<bodyStart]))
        }

        static func chunkNonce(_ index: UInt64, final: Bool) throws -> AES.GCM.Nonce {
            var bytes: [UInt8] = [final ? 1 : 0, 0, 0, 0]
            for shift in stride(from: 56, through: 0, by: -8) {
                bytes.append(UInt8(truncatingIfNeeded: index >> UInt64(shift)))
            }
            return try AES.GCM.Nonce(data: bytes)
        }

        /// The whole stream after the header, sealed in chunks of `chunkSize` as the v1 writer did.
        static func sealStream(_ plaintext: [UInt8], header: SealedHeader, key: SymmetricKey) throws -> [UInt8] {
            let aad = Array(SHA256.hash(data: header.bytes))
            let size = Int(header.chunkSize)
            var starts = Array(stride(from: 0, to: plaintext.count, by: size))
            if starts.isEmpty { starts = [0] }
            var out: [UInt8] = []
            for (index, start) in starts.enumerated() {
                let final = index == starts.count - 1
                let chunk = plaintext[start..<min(plaintext.count, start + size)]
                let box = try AES.GCM.seal(
                    chunk,
                    using: key,
                    nonce: chunkNonce(UInt64(index), final: final),
                    authenticating: aad
                )
                withUnsafeBytes(of: UInt32(box.ciphertext.count + 16).littleEndian) { out.append(contentsOf: $0) }
                out += Array(box.ciphertext) + Array(box.tag)
            }
            return out
        }
    }

    @Test func legacyCodeMadeTheVector() throws {
        let vector = try Self.bytes(Self.blobVector)
        let (header, bodyStart) = try SealedHeader.parse(vector)
        let key = Legacy.blobKey(root: Self.root, keyID: Self.keyID)
        let nonce = try AES.GCM.Nonce(data: vector[bodyStart..<bodyStart + 12])
        #expect(try Legacy.sealBlob(Self.blobPlaintext, header: header, key: key, nonce: nonce) == vector)
    }

    @Test func oldBlobOpens() throws {
        let vector = try Self.bytes(Self.blobVector)
        let (header, bodyStart) = try SealedHeader.parse(vector)
        #expect(header.kind == .blob && header.policy == .signerID && header.securityVersion == 3)
        #expect(header.keyID == Self.keyID && header.additionalData == Array("vector-aad".utf8))
        let key = SealingCipher.blobKey(root: Self.root, keyID: header.keyID)
        #expect(key == Legacy.blobKey(root: Self.root, keyID: header.keyID))
        #expect(try SealingCipher.openBlob(vector, bodyStart: bodyStart, key: key) == Self.blobPlaintext)
    }

    @Test(arguments: [0, 1, 100, 4096, 1 << 20])
    func newBlobsOpenWithTheOldCode(size: Int) throws {
        let plaintext = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let header = SealedHeader(
            kind: .blob,
            policy: .uniqueID,
            securityVersion: 9,
            keyID: Self.keyID,
            chunkSize: 0,
            additionalData: [1, 2, 3]
        )
        let key = SealingCipher.blobKey(root: Self.root, keyID: Self.keyID)
        let blob = try SealingCipher.sealBlob(plaintext, header: header, key: key)
        let (parsed, bodyStart) = try SealedHeader.parse(blob)
        #expect(parsed == header)
        #expect(blob.count == bodyStart + 12 + size + 16)
        #expect(try Legacy.openBlob(blob, bodyStart: bodyStart, key: key) == plaintext)
        #expect(try SealingCipher.openBlob(blob, bodyStart: bodyStart, key: key) == plaintext)
        // Two seals of the same plaintext differ (fresh nonce).
        #expect(try SealingCipher.sealBlob(plaintext, header: header, key: key) != blob)
    }

    @Test func everyFlippedOrMissingByteOfABlobIsRefused() throws {
        let vector = try Self.bytes(Self.blobVector)
        let (_, bodyStart) = try SealedHeader.parse(vector)
        let key = SealingCipher.blobKey(root: Self.root, keyID: Self.keyID)
        for offset in vector.indices {
            var flipped = vector
            flipped[offset] ^= 0x01
            #expect(throws: EnclaveError.invalidSignature("")) {
                try SealingCipher.openBlob(flipped, bodyStart: bodyStart, key: key)
            }
        }
        for length in 0..<bodyStart + 28 {
            #expect(throws: EnclaveError.malformedInput(""), "\(length) bytes") {
                let prefix = Array(vector.prefix(length))
                let (_, start) = try SealedHeader.parse(prefix)
                _ = try SealingCipher.openBlob(prefix, bodyStart: start, key: key)
            }
        }
        let other = SymmetricKey(size: .bits256)
        #expect(throws: EnclaveError.invalidSignature("")) {
            try SealingCipher.openBlob(vector, bodyStart: bodyStart, key: other)
        }
    }

    @Test(arguments: [1, 7, 100, 1000])
    func oldStreamOpensInAnyPieces(pieceSize: Int) throws {
        let vector = try Self.bytes(Self.streamVector)
        let (header, bodyStart) = try SealedHeader.parse(vector)
        #expect(header.kind == .stream && header.chunkSize == 4096)
        var unsealer = try StreamUnsealer(
            header: header,
            key: SealingCipher.blobKey(root: Self.root, keyID: header.keyID)
        )
        var plaintext: [UInt8] = []
        var position = bodyStart
        while position < vector.count {
            let end = min(vector.count, position + pieceSize)
            plaintext += try unsealer.feed(vector[position..<end])
            position = end
        }
        try unsealer.finish()
        #expect(plaintext == Self.streamPlaintext)
    }

    /// The new writer, fed in any piece sizes, writes exactly the bytes the old writer wrote for the whole input
    /// (stream nonces are the chunk index, so the output is deterministic), and the new reader opens them.
    @Test(arguments: [1, 1000, 4095, 4096, 4097, 10_000, 3 * 4096, 50_000])
    func newStreamsAreTheOldFormatByteForByte(pieceSize: Int) throws {
        let plaintext = (0..<(3 * 4096 + 123)).map { UInt8(truncatingIfNeeded: $0 &* 11) }
        let header = SealedHeader(
            kind: .stream,
            policy: .signerID,
            securityVersion: 2,
            keyID: Self.keyID,
            chunkSize: 4096,
            additionalData: []
        )
        let key = SealingCipher.blobKey(root: Self.root, keyID: Self.keyID)
        var sealer = try StreamSealer(header: header, key: key)
        var sealed: [UInt8] = []
        var chunks: [Int] = []
        var position = 0
        while position < plaintext.count {
            let end = min(plaintext.count, position + pieceSize)
            sealed += try sealer.write(Array(plaintext[position..<end])) { chunks.append($0) }
            position = end
        }
        sealed += try sealer.finish()
        #expect(chunks == [4096, 4096, 4096])
        #expect(sealed == (try Legacy.sealStream(plaintext, header: header, key: key)))
        var unsealer = try StreamUnsealer(header: header, key: key)
        #expect(try unsealer.feed(sealed) == plaintext)
        try unsealer.finish()
    }

    /// A stream of exactly N chunks' worth keeps the old shape: N chunks, the last one final and full; an empty
    /// stream is one empty final chunk.
    @Test(arguments: [0, 4096, 2 * 4096])
    func chunkBoundariesKeepTheOldShape(size: Int) throws {
        let plaintext = [UInt8](repeating: 0x5A, count: size)
        let header = SealedHeader(
            kind: .stream,
            policy: .signerID,
            securityVersion: 2,
            keyID: Self.keyID,
            chunkSize: 4096,
            additionalData: [9]
        )
        let key = SealingCipher.blobKey(root: Self.root, keyID: Self.keyID)
        var sealer = try StreamSealer(header: header, key: key)
        let sealed = try sealer.write(plaintext) + sealer.finish()
        #expect(sealed == (try Legacy.sealStream(plaintext, header: header, key: key)))
        #expect(sealed.count == max(1, size / 4096) * 20 + size)
    }

    @Test func streamTamperingIsRefused() throws {
        let plaintext = [UInt8](repeating: 0x42, count: 2 * 4096 + 10)
        let header = SealedHeader(
            kind: .stream,
            policy: .signerID,
            securityVersion: 2,
            keyID: Self.keyID,
            chunkSize: 4096,
            additionalData: []
        )
        let key = SealingCipher.blobKey(root: Self.root, keyID: Self.keyID)
        var sealer = try StreamSealer(header: header, key: key)
        let sealed = try sealer.write(plaintext) + sealer.finish()
        func open(_ bytes: [UInt8]) throws -> [UInt8] {
            var unsealer = try StreamUnsealer(header: header, key: key)
            let out = try unsealer.feed(bytes)
            try unsealer.finish()
            return out
        }
        #expect(try open(sealed) == plaintext)
        let chunk = 4 + 4096 + 16
        for offset in [4, 100, chunk - 1, chunk + 4, 2 * chunk + 4, sealed.count - 1] {
            var flipped = sealed
            flipped[offset] ^= 0x80
            #expect(throws: EnclaveError.invalidSignature(""), "offset \(offset)") { try open(flipped) }
        }
        // Truncated before the final chunk, or inside it.
        #expect(throws: EnclaveError.malformedInput("")) { try open(Array(sealed.prefix(2 * chunk))) }
        #expect(throws: EnclaveError.malformedInput("")) { try open(Array(sealed.dropLast())) }
        // The final chunk twice, and trailing bytes.
        #expect(throws: EnclaveError.malformedInput("")) { try open(sealed + sealed.suffix(4 + 10 + 16)) }
        #expect(throws: EnclaveError.malformedInput("")) { try open(sealed + [0, 0]) }
        // Middle chunks swapped.
        let swapped = Array(sealed[chunk..<2 * chunk]) + Array(sealed[..<chunk]) + Array(sealed[(2 * chunk)...])
        #expect(throws: EnclaveError.invalidSignature("")) { try open(swapped) }
        // A length out of range.
        var long = sealed
        long[2] = 0xFF
        #expect(throws: EnclaveError.malformedInput("")) { try open(long) }
    }
}
