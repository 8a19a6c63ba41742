import Crypto
import EnclaveCore
import Testing

@Suite("Signature structure")
struct SignatureTests {
    static let key = P256.Signing.PrivateKey()

    static func body(debug: Bool = false) throws -> EnclaveSignature.Body {
        let manifest = EnclaveManifest(
            imageDigest: try Digest32(bytes: [UInt8](repeating: 0xAA, count: 32)),
            trustedFiles: [
                .init(path: "/usr/lib/libz.so", digest: try Digest32(bytes: [UInt8](repeating: 2, count: 32))),
                .init(path: "/usr/lib/liba.so", digest: try Digest32(bytes: [UInt8](repeating: 1, count: 32))),
            ],
            maxThreads: 4,
            maxMemory: 1 << 30
        )
        return EnclaveSignature.Body(
            manifest: manifest,
            config: EnclaveConfig(productID: 9, securityVersion: 3, debug: debug)
        )
    }

    static func signed() throws -> [UInt8] { try EnclaveSignature(signing: body(), with: key).bytes }

    @Test func roundTripsAndYieldsTheIdentity() throws {
        let bytes = try Self.signed()
        let parsed = try EnclaveSignature(bytes: bytes)
        #expect(parsed.bytes == bytes)
        let identity = parsed.identity
        #expect(identity.uniqueID == (try Self.body()).manifest.uniqueID)
        #expect(identity.signerID.bytes == Array(SHA256.hash(data: Self.key.publicKey.derRepresentation)))
        #expect(identity.productID == 9)
        #expect(identity.securityVersion == 3)
        #expect(!identity.isDebug)
        #expect(parsed.body.manifest.trustedFiles.map(\.path) == ["/usr/lib/liba.so", "/usr/lib/libz.so"])
    }

    @Test func uniqueIDCoversImageLibrariesAndLayout() throws {
        let base = try Self.body().manifest
        var image = base
        image.imageDigest = .zero
        var library = base
        library.trustedFiles[0].digest = .zero
        var threads = base
        threads.maxThreads = 5
        var memory = base
        memory.maxMemory += 4096
        let ids = Set([base, image, library, threads, memory].map(\.uniqueID))
        #expect(ids.count == 5)
    }

    /// Each field of the signed body, flipped, is refused.
    @Test(arguments: [
        ("magic", 0), ("version", 8), ("uniqueID", 20), ("productID", 42), ("securityVersion", 44),
        ("attributes", 46), ("debug attribute", 46), ("maxThreads", 54), ("maxMemory", 60), ("image digest", 70),
        ("file count", 98), ("file path", 105), ("file digest", 130),
    ])
    func tamperedBodyFieldIsRefused(field: String, offset: Int) throws {
        var bytes = try Self.signed()
        bytes[offset] ^= field == "debug attribute" ? 0x02 : 0x01
        #expect(throws: (any Error).self, "\(field)") { try EnclaveSignature(bytes: bytes) }
    }

    @Test func changedProductIDFailsTheSignatureCheck() throws {
        var bytes = try Self.signed()
        bytes[42] ^= 1
        let error = try #require(throws: EnclaveError.self) { try EnclaveSignature(bytes: bytes) }
        #expect(error.code == .invalidSignature)
        #expect(error.reason.contains("does not verify"))
    }

    @Test func changedLayoutFailsTheMeasurementConsistencyCheck() throws {
        var bytes = try Self.signed()
        bytes[54] ^= 1  // maxThreads 4 -> 5: the stated uniqueID no longer matches the manifest
        let error = try #require(throws: EnclaveError.self) { try EnclaveSignature(bytes: bytes) }
        #expect(error.reason.contains("uniqueID"))
    }

    @Test func tamperedSignatureOrKeyIsRefused() throws {
        let bytes = try Self.signed()
        let bodyLength = (try Self.body()).bytes.count
        var key = bytes
        key[bodyLength + 2 + 40] ^= 1
        #expect(throws: EnclaveError.invalidSignature("")) { try EnclaveSignature(bytes: key) }
        var signature = bytes
        signature[bytes.count - 5] ^= 1
        #expect(throws: EnclaveError.invalidSignature("")) { try EnclaveSignature(bytes: signature) }
        // A valid signature by a different key: verifies, but under another signerID.
        let other = try EnclaveSignature(signing: Self.body(), with: P256.Signing.PrivateKey())
        #expect(other.identity.signerID != (try EnclaveSignature(bytes: bytes)).identity.signerID)
    }

    @Test func everyPrefixAndTrailingDataAreRefused() throws {
        let bytes = try Self.signed()
        for length in 0..<bytes.count {
            let error = #expect(throws: EnclaveError.self) { try EnclaveSignature(bytes: Array(bytes.prefix(length))) }
            #expect(error?.code == .malformedInput, "prefix of \(length) bytes: \(String(describing: error))")
        }
        #expect(throws: EnclaveError.malformedInput("")) { try EnclaveSignature(bytes: bytes + [0]) }
    }

    @Test func unknownAttributeBitsAreRefused() throws {
        var bytes = try Self.signed()
        bytes[47] |= 0x80
        let error = try #require(throws: EnclaveError.self) { try EnclaveSignature(bytes: bytes) }
        #expect(error.reason.contains("attribute"))
    }

    @Test func offlineSignatureAttaches() throws {
        let body = try Self.body()
        let offline = try Self.key.signature(for: body.bytes)
        let der = try EnclaveSignature(
            body: body,
            publicKey: Self.key.publicKey,
            signature: Array(offline.derRepresentation)
        )
        let raw = try EnclaveSignature(
            body: body,
            publicKey: Self.key.publicKey,
            signature: Array(offline.rawRepresentation)
        )
        #expect(try EnclaveSignature(bytes: der.bytes).identity == (try EnclaveSignature(bytes: raw.bytes)).identity)
        var wrong = Array(offline.rawRepresentation)
        wrong[10] ^= 1
        #expect(throws: EnclaveError.invalidSignature("")) {
            try EnclaveSignature(body: body, publicKey: Self.key.publicKey, signature: wrong)
        }
        #expect(throws: EnclaveError.invalidSignature("")) {
            try EnclaveSignature(
                body: body,
                publicKey: P256.Signing.PrivateKey().publicKey,
                signature: Array(offline.derRepresentation)
            )
        }
    }
}
