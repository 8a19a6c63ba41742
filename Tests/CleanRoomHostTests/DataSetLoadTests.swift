import AttestationService
import CleanRoom
import CleanRoomHost
import CleanRoomInterface
import Crypto
import EnclaveCore
import Foundation
import KeyReleaseFormats
import NIOCore
import Testing

/// Loading a data set: the key reaches the enclave only wrapped to its attested key, the ciphertext only through
/// the host's OCALL; bad rows are counted, a tampered file or a key wrapped to anyone else is refused by name.
@Suite("Clean room data set load", .serialized)
struct DataSetLoadTests {
    let parties = Parties()

    /// The data key wrapped (JWE ECDH-ES+A256KW) to the key in the clean room's attested runtime data.
    static func wrap(_ dataKey: [UInt8], for opened: CleanRoomOpened) throws -> String {
        struct Runtime: Decodable { let keys: [WrapJWK] }
        let runtime = try JSONDecoder().decode(Runtime.self, from: Data(opened.runtimeData))
        let jwk = try #require(runtime.keys.first)
        return try ECDHESJWE.encrypt(dataKey, to: try jwk.wrapTarget(), keyID: jwk.kid)
    }

    @Test func loadsWithAWrappedKeyCountsBadRowsAndRefusesTampering() async throws {
        let harness = try await CleanRoomHostRoutesTests.harness()
        defer { Task { await harness.close() } }
        let contract = parties.contract(enclave: harness.fixture.requirement)
        _ = try await harness.host.submitContract(contract.canonicalBytes)
        for signature in try parties.signatures(contract) { _ = try await harness.host.submitSignature(signature) }
        let opened = try await harness.host.attestation()
        let dataKey = (0..<32).map { _ in UInt8.random(in: 0...255) }
        var csv = "card,merchant,amount\n"
        for index in 0..<500 { csv += "card-\(index % 40),shop-\(index % 7),\(index)\n" }
        csv += "card-x,shop-x,not-a-number\n"
        let file = try DataFileEncryptor.encrypt(
            Array(csv.utf8),
            dataKey: SymmetricKey(data: dataKey),
            contractID: contract.id,
            dataSet: "a_tx",
            chunkSize: 4096
        )
        _ = try await harness.host.storeDataSet(
            name: "a_tx",
            ownerSignature: try parties.uploadSignature(file, dataSet: "a_tx", contract: contract),
            sha256: Parties.sha256(file),
            body: Self.body(file)
        )

        // The key wrapped to someone else's key: refused, nothing loaded.
        let stranger = P256.KeyAgreement.PrivateKey()
        let misdirected = try ECDHESJWE.encrypt(dataKey, to: .p256(stranger.publicKey))
        let refused = await #expect(throws: ServiceError.self) {
            _ = try await harness.host.loadDataSet(name: "a_tx", wrappedKey: misdirected)
        }
        #expect(refused?.code == "keyUnwrap", "\(String(describing: refused))")

        // A malicious host flips one byte of the stored ciphertext: the enclave finds the owner's signature does
        // not cover what it read, nothing loaded. Truncated after a chunk: the same.
        let path = harness.store.dataSetPath("a_tx")
        let signaturePath = harness.store.dataSetSignaturePath("a_tx")
        let genuineSignature = try Data(contentsOf: URL(fileURLWithPath: signaturePath))
        var flipped = file
        flipped[file.count / 2] ^= 1
        for changed in [flipped, Array(file.prefix(file.count - 100))] {
            try Data(changed).write(to: URL(fileURLWithPath: path))
            let refused = await #expect(throws: ServiceError.self) {
                _ = try await harness.host.loadDataSet(name: "a_tx", wrappedKey: try Self.wrap(dataKey, for: opened))
            }
            #expect(refused?.code == "uploadSignature", "\(String(describing: refused))")
        }
        // Bytes the owner did sign but that don't decrypt (a flipped chunk, a lost tail): the file's own
        // authentication refuses them inside the enclave.
        for changed in [flipped, Array(file.prefix(file.count - 100))] {
            try Data(changed).write(to: URL(fileURLWithPath: path))
            let signature = try parties.uploadSignature(changed, dataSet: "a_tx", contract: contract)
            try Data(signature.utf8).write(to: URL(fileURLWithPath: signaturePath))
            let tampered = await #expect(throws: ServiceError.self) {
                _ = try await harness.host.loadDataSet(name: "a_tx", wrappedKey: try Self.wrap(dataKey, for: opened))
            }
            #expect(tampered?.code == "dataTampered", "\(String(describing: tampered))")
        }
        try genuineSignature.write(to: URL(fileURLWithPath: signaturePath))

        // The host's own rows under the owner's name: a data key of its own wrapped to the enclave's public key, a
        // file it encrypted, the owner's genuine signature (or none of the owner's) beside it: refused, not loaded.
        let hostKey = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let forged = try DataFileEncryptor.encrypt(
            Array("card,merchant,amount\n".utf8) + (0..<50).flatMap { Array("fake-\($0),shop-0,1\n".utf8) },
            dataKey: SymmetricKey(data: hostKey),
            contractID: contract.id,
            dataSet: "a_tx",
            chunkSize: 4096
        )
        try Data(forged).write(to: URL(fileURLWithPath: path))
        let substituted = await #expect(throws: ServiceError.self) {
            _ = try await harness.host.loadDataSet(name: "a_tx", wrappedKey: try Self.wrap(hostKey, for: opened))
        }
        #expect(substituted?.code == "uploadSignature", "\(String(describing: substituted))")
        let otherSigner = P256.Signing.PrivateKey()
        let hostSigned = try DataSetUploadSigning.sign(
            contractID: contract.id,
            dataSet: "a_tx",
            sha256: SHA256.hash(data: forged).map { String(format: "%02x", $0) }.joined(),
            version: 1,
            key: otherSigner
        )
        try Data(hostSigned.utf8).write(to: URL(fileURLWithPath: signaturePath))
        let selfSigned = await #expect(throws: ServiceError.self) {
            _ = try await harness.host.loadDataSet(name: "a_tx", wrappedKey: try Self.wrap(hostKey, for: opened))
        }
        #expect(selfSigned?.code == "uploadSignature", "\(String(describing: selfSigned))")
        try genuineSignature.write(to: URL(fileURLWithPath: signaturePath))

        // The genuine file with the key wrapped to the clean room: loaded, the bad row counted by line.
        try Data(file).write(to: URL(fileURLWithPath: path))
        let report = try await harness.host.loadDataSet(name: "a_tx", wrappedKey: try Self.wrap(dataKey, for: opened))
        #expect(report.rows == 500)
        #expect(report.badRowCount == 1)
        #expect(report.badRows.first?.hasPrefix("line 502") == true, "\(report.badRows)")
        #expect(!report.badRows.joined().contains("not-a-number"), "a bad row's report must not carry its values")
        #expect(report.ciphertextSHA256 == SHA256.hash(data: file).map { String(format: "%02x", $0) }.joined())
        let status = try await HostStatus.of(harness.host)
        #expect(status.dataSets.first { $0.name == "a_tx" }?.rows == 500)
        #expect(status.dataSets.first { $0.name == "a_tx" }?.badRows == 1)
        // Once only.
        let again = await #expect(throws: ServiceError.self) {
            _ = try await harness.host.loadDataSet(name: "a_tx", wrappedKey: try Self.wrap(dataKey, for: opened))
        }
        #expect(again?.code == "alreadyLoaded", "\(String(describing: again))")
        // A data set not uploaded.
        let missing = await #expect(throws: ServiceError.self) {
            _ = try await harness.host.loadDataSet(name: "b_tx", wrappedKey: try Self.wrap(dataKey, for: opened))
        }
        #expect(missing?.code == "NotUploaded")
    }

    /// `bytes` as a request body in pieces.
    static func body(_ bytes: [UInt8]) -> AsyncThrowingStream<ByteBuffer, any Error> {
        AsyncThrowingStream { continuation in
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + 3000, bytes.count)
                continuation.yield(ByteBuffer(bytes: bytes[offset..<end]))
                offset = end
            }
            continuation.finish()
        }
    }
}
