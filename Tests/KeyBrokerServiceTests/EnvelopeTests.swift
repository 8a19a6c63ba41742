import Crypto
import EnclaveCore
import KeyEnvelope
import Testing
import _CryptoExtras

@Suite("Envelope encryption")
struct EnvelopeTests {
    static func header(_ wrapped: [UInt8] = [1, 2, 3], chunkSize: UInt32 = 4096) -> EnvelopeHeader {
        EnvelopeHeader(
            algorithm: .rsaOAEP256,
            keyID: "https://broker.test/keys/data/0123456789abcdef0123456789abcdef",
            wrappedKey: wrapped,
            fileID: Envelope.newFileID(),
            chunkSize: chunkSize
        )
    }

    @Test("A file round-trips; its header names the key; an RSA-OAEP-256 data key unwraps with the private key")
    func roundTrip() throws {
        let rsa = try _RSA.Encryption.PrivateKey(keySize: .bits2048)
        let primitives = try rsa.publicKey.getKeyPrimitives()
        let dataKey = Envelope.newDataKey()
        let wrapped = try Envelope.wrapRSAOAEP256(
            dataKey,
            n: Array(primitives.modulus),
            e: Array(primitives.publicExponent)
        )
        let plaintext = Array((0..<10_000).map { UInt8(truncatingIfNeeded: $0) })
        let file = try Envelope.encrypt(plaintext, header: Self.header(wrapped), dataKey: dataKey)
        let header = try Envelope.header(of: file)
        #expect(header.keyNameAndVersion?.name == "data")
        let unwrapped = try Envelope.unwrapRSAOAEP256(header.wrappedKey, with: rsa)
        #expect(try Envelope.decrypt(file, dataKey: unwrapped) == plaintext)
        #expect(!file.contains(subsequence: plaintext.prefix(64)))
    }

    @Test("Tampering: every flipped byte, a truncation, appended bytes and the wrong key are refused")
    func tampering() throws {
        let dataKey = Envelope.newDataKey()
        let plaintext = Array(repeating: UInt8(7), count: 9000)
        let file = try Envelope.encrypt(plaintext, header: Self.header(), dataKey: dataKey)
        for index in stride(from: 0, to: file.count, by: 97) {
            var bad = file
            bad[index] ^= 0x01
            #expect(throws: EnclaveError.self) { try Envelope.decrypt(bad, dataKey: dataKey) }
        }
        #expect(throws: EnclaveError.self) { try Envelope.decrypt(Array(file.dropLast(5)), dataKey: dataKey) }
        #expect(throws: EnclaveError.self) { try Envelope.decrypt(file + [0], dataKey: dataKey) }
        #expect(throws: EnclaveError.self) { try Envelope.decrypt(file, dataKey: Envelope.newDataKey()) }
        for length in 0..<80 {
            #expect(throws: EnclaveError.self) { try Envelope.decrypt(Array(file.prefix(length)), dataKey: dataKey) }
        }
    }
}

extension Array where Element == UInt8 {
    func contains(subsequence: some Collection<UInt8>) -> Bool {
        let needle = Array(subsequence)
        guard needle.count <= count else { return false }
        return (0...(count - needle.count)).contains { self[$0..<$0 + needle.count].elementsEqual(needle) }
    }
}
