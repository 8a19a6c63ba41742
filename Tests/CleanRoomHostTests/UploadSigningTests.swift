import AttestationService
import CleanRoom
import CleanRoomHost
import CleanRoomInterface
import Crypto
import EnclaveCore
import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing

/// Per-party upload authentication: a data set is stored only with its owner's ES256 signature over the contract
/// ID, the data set name and the ciphertext's SHA-256. Another party, a changed file, a signature for another data
/// set or contract, or no signature: refused by name, and the owner's stored upload is left as it was.
@Suite("Clean room upload signatures", .serialized)
struct UploadSigningTests {
    let parties = Parties()

    @Test func onlyTheOwnersSignatureOverTheseBytesStoresADataSet() async throws {
        let harness = try await CleanRoomHostRoutesTests.harness()
        defer { Task { await harness.close() } }
        let contract = parties.contract(enclave: harness.fixture.requirement)
        _ = try await harness.host.submitContract(contract.canonicalBytes)
        let csv = Array("card,merchant,amount\ncard-1,coffee,42\n".utf8)
        let key = SymmetricKey(size: .bits256)
        let file = try DataFileEncryptor.encrypt(csv, dataKey: key, contractID: contract.id, dataSet: "a_tx")
        let other = try DataFileEncryptor.encrypt(csv, dataKey: key, contractID: contract.id, dataSet: "a_tx")
        let digest = SHA256.hash(data: file).map { String(format: "%02x", $0) }.joined()
        @Sendable func signature(
            _ party: String,
            dataSet: String = "a_tx",
            contractID: Digest32? = nil
        ) throws -> String {
            try DataSetUploadSigning.sign(
                contractID: contractID ?? contract.id,
                dataSet: dataSet,
                sha256: digest,
                version: 1,
                key: parties.key(party)
            )
        }
        @Sendable func header(_ value: String) -> HTTPFields {
            [.init(CleanRoomServer.ownerSignatureHeader)!: value, .init(CleanRoomServer.uploadDigestHeader)!: digest]
        }

        let app = Application(router: CleanRoomServer.router(host: harness.host))
        try await app.test(.router) { client in
            // The owner's upload is stored.
            let stored = try await CleanRoomHostRoutesTests.send(
                client,
                .put,
                "/datasets/a_tx",
                file,
                headers: header(try signature("bank-a"))
            )
            #expect(stored.status == 200, "\(stored.text)")

            // Each attempt to replace it without the owner's signature over exactly these bytes is refused.
            let attempts: [(String, [UInt8], HTTPFields)] = [
                ("no signature", other, [.init(CleanRoomServer.uploadDigestHeader)!: digest]),
                ("another owner (bank-b) signs a_tx", file, header(try signature("bank-b"))),
                ("the analyst signs a_tx", file, header(try signature("analyst"))),
                ("the owner's signature over other bytes", other, header(try signature("bank-a"))),
                ("a signature for another data set", file, header(try signature("bank-a", dataSet: "b_tx"))),
                (
                    "a signature for another contract", file,
                    header(
                        try signature("bank-a", contractID: try Digest32(bytes: [UInt8](repeating: 7, count: 32)))
                    )
                ),
                ("a signature that is not base64url", file, header("!!!")),
                ("a truncated signature", file, header(String(try signature("bank-a").dropLast(4)))),
            ]
            for (what, body, headers) in attempts {
                let refused = try await CleanRoomHostRoutesTests.send(
                    client,
                    .put,
                    "/datasets/a_tx",
                    body,
                    headers: headers
                )
                #expect(refused.status == 400, "\(what): \(refused.text)")
                // Other bytes under the owner's signature of these: the signature verifies for the declared digest,
                // the body's digest differs (`uploadDigest`); every other attempt stops at the signature.
                let expected = body == other && headers.count == 2 ? "uploadDigest" : "uploadSignature"
                #expect(CleanRoomHostRoutesTests.code(refused.text) == expected, "\(what): \(refused.text)")
            }
        }
        // Nothing lost: the owner's file is still the stored one, no partial upload left behind.
        let onDisk = try Data(contentsOf: URL(fileURLWithPath: harness.store.dataSetPath("a_tx")))
        #expect(Array(onDisk) == file)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: harness.directory + "/datasets")
        #expect(leftovers.sorted() == ["a_tx.ecr", "a_tx.sig"], "\(leftovers)")
        // The signature kept beside it (the enclave checks it again at load) is still the owner's over that file.
        let kept = try String(contentsOfFile: harness.store.dataSetSignaturePath("a_tx"), encoding: .utf8)
        #expect(throws: Never.self) {
            try DataSetUploadSigning.verify(kept, contract: contract, dataSet: "a_tx", sha256: digest)
        }
        let record = try await harness.store.dataSets().first { $0.name == "a_tx" }
        #expect(record?.sha256 == digest)
    }

    /// F5: the owner re-uploads a_tx as version 2 (rows removed after consent was withdrawn) and the clean room loads
    /// it; the host keeps version 1 and its signature and loads them after a restart. The clean room recorded version
    /// 2 in its counted state: version 1 is refused (`staleUpload`), version 2 still loads.
    @Test func anUploadOlderThanOneLoadedIsRefusedAcrossRestarts() async throws {
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        let signed = try Fixtures.sign("CleanRoomEnclave")
        let counter = TestCounter()
        let durable = DurableStateTests()
        let contract = durable.contract(signed)
        let dataKey = SymmetricKey(size: .bits256)
        func file(rows: Int) throws -> [UInt8] {
            var csv = "card,merchant,amount\n"
            for index in 0..<rows { csv += "card-\(index % 10),shop-big,\(index)\n" }
            return try DataFileEncryptor.encrypt(
                Array(csv.utf8),
                dataKey: dataKey,
                contractID: contract.id,
                dataSet: "a_tx",
                chunkSize: 4096
            )
        }
        let first = try file(rows: 40)
        let second = try file(rows: 30)
        let firstSignature = try durable.parties.uploadSignature(first, dataSet: "a_tx", contract: contract, version: 1)
        let secondSignature = try durable.parties.uploadSignature(
            second,
            dataSet: "a_tx",
            contract: contract,
            version: 2
        )
        func load(_ room: DurableStateTests.Room) async throws -> CleanRoomLoadReport {
            let opened = try await room.host.attestation()
            return try await room.host.loadDataSet(
                name: "a_tx",
                wrappedKey: try DataSetLoadTests.wrap(dataKey.withUnsafeBytes { Array($0) }, for: opened)
            )
        }

        // First life: version 1 loaded.
        let life1 = try await RollbackCounterTests.start(signed, directory: directory, counter: counter)
        defer { Task { await life1.close() } }
        _ = try await life1.host.submitContract(contract.canonicalBytes)
        for signature in try durable.parties.signatures(contract) {
            _ = try await life1.host.submitSignature(signature)
        }
        _ = try await life1.host.storeDataSet(
            name: "a_tx",
            ownerSignature: firstSignature,
            sha256: Parties.sha256(first),
            body: DataSetLoadTests.body(first)
        )
        #expect(try await load(life1).rows == 40)
        await life1.close()

        // Second life: the owner's version 2 loaded.
        let life2 = try await RollbackCounterTests.start(signed, directory: directory, counter: counter)
        defer { Task { await life2.close() } }
        _ = try await life2.host.storeDataSet(
            name: "a_tx",
            ownerSignature: secondSignature,
            sha256: Parties.sha256(second),
            body: DataSetLoadTests.body(second)
        )
        #expect(try await load(life2).rows == 30)
        await life2.close()

        // Third life: the host puts version 1 and its signature back and loads it.
        let life3 = try await RollbackCounterTests.start(signed, directory: directory, counter: counter)
        defer { Task { await life3.close() } }
        try Data(first).write(to: URL(fileURLWithPath: life3.store.dataSetPath("a_tx")))
        try Data(firstSignature.utf8).write(to: URL(fileURLWithPath: life3.store.dataSetSignaturePath("a_tx")))
        #expect(await DurableStateTests.refusal { _ = try await load(life3) } == "staleUpload")
        // The owner's newest upload still loads (the refusal left nothing behind).
        try Data(second).write(to: URL(fileURLWithPath: life3.store.dataSetPath("a_tx")))
        try Data(secondSignature.utf8).write(to: URL(fileURLWithPath: life3.store.dataSetSignaturePath("a_tx")))
        #expect(try await load(life3).rows == 30)
    }

    /// A signature in the v1 format (no version) is refused by name, and so are malformed versions.
    @Test func aVersionlessOrMalformedUploadSignatureIsRefusedByName() throws {
        let contract = parties.contract(
            enclave: .init(
                signerID: try Digest32(bytes: [UInt8](repeating: 0x33, count: 32)),
                productID: 1,
                minSecurityVersion: 1
            )
        )
        let file = [UInt8](repeating: 0xA5, count: 100)
        let digest = SHA256.hash(data: file).map { String(format: "%02x", $0) }.joined()
        let v1Message =
            Array("EnclaveKit.cleanroom.upload.v1".utf8) + [0]
            + CanonicalJSON.object([
                "contract": .string(contract.id.hex), "dataSet": .string("a_tx"), "sha256": .string(digest),
            ]).canonicalBytes
        let v1 = Base64URL.encode(Array(try parties.bankA.signature(for: v1Message).rawRepresentation))
        let outdated = #expect(throws: CleanRoomError.self) {
            try DataSetUploadSigning.verify(v1, contract: contract, dataSet: "a_tx", sha256: digest)
        }
        #expect(outdated?.code == .formatOutdated, "\(String(describing: outdated))")
        let good = try parties.uploadSignature(file, dataSet: "a_tx", contract: contract, version: 7)
        #expect(try DataSetUploadSigning.verify(good, contract: contract, dataSet: "a_tx", sha256: digest) == 7)
        let body = good.split(separator: ".")[1]
        for version in ["0", "07", "-7", "+7", "8", "", "99999999999999999999", "7 "] {
            let refused = #expect(throws: CleanRoomError.self, "version \(version)") {
                try DataSetUploadSigning.verify(
                    version + "." + body,
                    contract: contract,
                    dataSet: "a_tx",
                    sha256: digest
                )
            }
            #expect(refused?.code == .uploadSignature, "\(version): \(String(describing: refused))")
        }
    }
}
