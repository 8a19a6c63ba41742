import Crypto
import EnclaveHost
import Foundation
import TestInterface
import TestSupport
import Testing

@Suite("Simulated platform: sealing and local attestation")
struct SealingTests {
    let platform: SimulatedPlatform
    let signer = P256.Signing.PrivateKey()

    init() throws {
        platform = try SimulatedPlatform.open(directory: Fixtures.temporaryDirectory() + "/platform")
    }

    func load(
        securityVersion: UInt16 = 1,
        productID: UInt16 = 1,
        maxThreads: UInt32 = 4,
        debug: Bool = false,
        signer: P256.Signing.PrivateKey? = nil,
        platform: SimulatedPlatform? = nil
    ) async throws -> Enclave {
        let config = EnclaveConfig(
            productID: productID,
            securityVersion: securityVersion,
            debug: debug,
            maxThreads: maxThreads
        )
        let signed = try Fixtures.sign(config: config, key: signer ?? self.signer)
        var options = Fixtures.options(signed, debug: debug)
        options.platform = platform ?? self.platform
        return try await Enclave.load(path: signed.image, options: options)
    }

    func unseal(_ blob: [UInt8], in enclave: Enclave) async -> Result<[UInt8], any Error> {
        await capture { try await enclave.call(Unseal.self, blob) }
    }

    static let secret = Array("the launch codes are 0000".utf8)

    @Test(arguments: SealPolicy.allCases)
    func sealsAndUnsealsWithoutExposingThePlaintext(_ policy: SealPolicy) async throws {
        let enclave = try await load()
        let blob = try await enclave.call(
            Seal.self,
            SealRequest(plaintext: Self.secret, policy: policy, additionalData: [7])
        )
        #expect(!Data(blob).contains(Data(Self.secret)))
        #expect(try await enclave.call(Unseal.self, blob) == Self.secret)
        // A fresh key ID each time: sealing twice gives different blobs.
        let again = try await enclave.call(Seal.self, SealRequest(plaintext: Self.secret, policy: policy))
        #expect(again != blob)
        await enclave.terminate()
    }

    @Test func signerPolicyFollowsUpgradesButNeverDowngrades() async throws {
        let v1 = try await load(securityVersion: 1)
        let v2 = try await load(securityVersion: 2)
        let old = try await v1.call(Seal.self, SealRequest(plaintext: Self.secret, policy: .signerID))
        #expect(try await unseal(old, in: v2).get() == Self.secret)
        let new = try await v2.call(Seal.self, SealRequest(plaintext: Self.secret, policy: .signerID))
        let refused = await unseal(new, in: v1)
        // The platform refuses a key above the enclave's security version (its own finding: `callFailed`).
        expectEnclaveError(.callFailed) { try refused.get() }
        #expect("\(refused)".contains("refused"))
        await v1.terminate()
        await v2.terminate()
    }

    @Test func signerPolicyBindsSignerProductAndDebug() async throws {
        let original = try await load()
        let blob = try await original.call(Seal.self, SealRequest(plaintext: Self.secret, policy: .signerID))
        let otherSigner = try await load(signer: P256.Signing.PrivateKey())
        let otherProduct = try await load(productID: 2)
        let debug = try await load(debug: true)
        let otherPlatform = try await load(platform: SimulatedPlatform.open(directory: Fixtures.temporaryDirectory()))
        for enclave in [otherSigner, otherProduct, debug, otherPlatform] {
            let result = await unseal(blob, in: enclave)
            expectEnclaveError(.invalidSignature) { try result.get() }
            #expect("\(result)".contains("does not authenticate"))
            await enclave.terminate()
        }
        // Control: a second instance of the same enclave reads it.
        let same = try await load()
        #expect(try await unseal(blob, in: same).get() == Self.secret)
        await same.terminate()
        await original.terminate()
    }

    @Test func uniquePolicyBindsTheMeasurement() async throws {
        let original = try await load()
        let blob = try await original.call(Seal.self, SealRequest(plaintext: Self.secret, policy: .uniqueID))
        let changed = try await load(maxThreads: 5)  // another layout, so another uniqueID, same signer
        #expect(changed.identity.uniqueID != original.identity.uniqueID)
        await expectEnclaveError(.invalidSignature) { try await unseal(blob, in: changed).get() }
        let sameMeasurementOtherSigner = try await load(signer: P256.Signing.PrivateKey())
        #expect(try await unseal(blob, in: sameMeasurementOtherSigner).get() == Self.secret)
        for enclave in [original, changed, sameMeasurementOtherSigner] { await enclave.terminate() }
    }

    /// Offsets into a blob with 3 bytes of additional data: magic 0, version 4, kind 5, policy 6, flags 7,
    /// security version 8, key ID 10, chunk size 42, additional-data length 46, additional data 50, nonce 53,
    /// ciphertext 65, tag at the end.
    @Test(arguments: [
        ("magic", 0), ("version", 4), ("kind", 5), ("policy", 6), ("flags", 7), ("security version", 8),
        ("key ID", 20), ("chunk size", 42), ("additional data length", 46), ("additional data", 51), ("nonce", 55),
        ("ciphertext", 66), ("tag", -1),
    ])
    func tamperedBlobIsRefused(field: String, offset: Int) async throws {
        let enclave = try await load()
        var blob = try await enclave.call(
            Seal.self,
            SealRequest(plaintext: Self.secret, policy: .signerID, additionalData: [1, 2, 3])
        )
        blob[offset >= 0 ? offset : blob.count + offset] ^= 0x01
        // A header field the parser reads is malformed; anything else the tag authenticates.
        let parsed: Set<String> = ["magic", "version", "kind", "policy", "flags", "chunk size"]
        let flipped: EnclaveError.Code = parsed.contains(field) ? .malformedInput : .invalidSignature
        await expectEnclaveError(flipped, "\(field)") { try await unseal(blob, in: enclave).get() }
        // Truncations too: too short for a header and a tag is malformed; one byte short fails as the flip did.
        for length in [0, 10, 49, 60, blob.count - 1] {
            await expectEnclaveError(length < blob.count - 1 ? .malformedInput : flipped, "\(length) bytes") {
                try await unseal(Array(blob.prefix(length)), in: enclave).get()
            }
        }
        await enclave.terminate()
    }

    @Test func streamsRoundTripInAnyPieceSize() async throws {
        let enclave = try await load()
        let data = (0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        for chunkSize in [4096, 16384] {
            let pieces = try await enclave.call(SealStream.self, StreamRequest(bytes: data, chunkSize: chunkSize))
            #expect(pieces.count == 1 + (data.count + chunkSize - 1) / chunkSize)
            let stream = pieces.flatMap { $0 }
            for pieceSize in [1000, 4096, 100_000] {
                let opened = try await enclave.call(
                    UnsealStream.self,
                    StreamRequest(bytes: stream, chunkSize: pieceSize)
                )
                #expect(opened == data)
            }
        }
        let empty = try await enclave.call(SealStream.self, StreamRequest(bytes: [], chunkSize: 4096)).flatMap { $0 }
        #expect(try await enclave.call(UnsealStream.self, StreamRequest(bytes: empty, chunkSize: 7)) == [])
        await enclave.terminate()
    }

    @Test func streamTruncationReorderingAndSwapsAreDetected() async throws {
        let enclave = try await load()
        let data = [UInt8](repeating: 0x42, count: 4096 * 4 + 10)
        let pieces = try await enclave.call(SealStream.self, StreamRequest(bytes: data, chunkSize: 4096))
        let other = try await enclave.call(SealStream.self, StreamRequest(bytes: data, chunkSize: 4096))
        #expect(pieces.count == 6)  // header + 5 chunks
        func open(_ parts: [[UInt8]]) async -> Result<[UInt8], any Error> {
            await capture {
                try await enclave.call(UnsealStream.self, StreamRequest(bytes: parts.flatMap { $0 }, chunkSize: 5000))
            }
        }
        #expect(try await open(pieces).get() == data)  // control
        var dropped = pieces
        dropped.remove(at: 2)
        var reordered = pieces
        reordered.swapAt(1, 2)
        let truncated = Array(pieces.dropLast())
        var swapped = pieces
        swapped[3] = other[3]
        var extra = pieces
        extra.append(pieces[5])
        var flipped = pieces
        flipped[4][10] ^= 1
        for (name, parts) in [
            ("dropped", dropped), ("reordered", reordered), ("truncated", truncated), ("swapped", swapped),
            ("extra chunk", extra), ("flipped", flipped),
        ] {
            await #expect(throws: EnclaveError.self, "\(name)") { try await open(parts).get() }
        }
        await enclave.terminate()
    }

    @Test func reportsVerifyOnlyAtTheirTarget() async throws {
        let a = try await load()
        let b = try await load(maxThreads: 6)
        let c = try await load(maxThreads: 7)
        let targetB = try await b.call(GetTargetInfo.self, Empty())
        let report = try await a.call(
            MakeReport.self,
            TestInterface.ReportRequest(target: targetB, reportData: [9, 9])
        )
        #expect(try await b.call(CheckReport.self, report) == a.identity)
        let atC = await capture { try await c.call(CheckReport.self, report) }
        expectEnclaveError(.invalidSignature) { try atC.get() }
        #expect("\(atC)".contains("another enclave"))
        // Re-targeting the report at C breaks its MAC.
        var retargeted = report
        let cInfo = try await c.call(GetTargetInfo.self, Empty())
        retargeted.replaceSubrange(81..<113, with: cInfo.uniqueID.bytes)
        let forged = await capture { try await c.call(CheckReport.self, retargeted) }
        #expect("\(forged)".contains("MAC"))
        // Any other flipped byte fails too.
        for offset in [0, 10, 50, 80, 120, 180] {
            var tampered = report
            tampered[offset] ^= 1
            // A byte the report's parser reads is malformed; any other breaks the MAC.
            let error = await #expect(throws: EnclaveError.self, "offset \(offset)") {
                try await b.call(CheckReport.self, tampered)
            }
            #expect(error.map { [.malformedInput, .invalidSignature].contains($0.code) } == true, "offset \(offset)")
        }
        for enclave in [a, b, c] { await enclave.terminate() }
    }

    @Test func platformSecretIsCreatedOnceWithTightPermissions() async throws {
        let directory = try Fixtures.temporaryDirectory()
        let path = directory + "/secret"
        let results = try await withThrowingTaskGroup(of: [UInt8].self) { group in
            for _ in 0..<16 { group.addTask { try SimulatedPlatform.loadOrCreate(path, size: 32) } }
            return try await group.reduce(into: Set<[UInt8]>()) { $0.insert($1) }
        }
        #expect(results.count == 1)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory)
        #expect(leftovers == ["secret"])
        let platformDirectory = try FileManager.default.attributesOfItem(atPath: platform.directory)
        #expect(platformDirectory[.posixPermissions] as? Int == 0o700)
    }
}
