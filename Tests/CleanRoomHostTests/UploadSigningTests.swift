import AttestationService
import CleanRoom
import CleanRoomHost
import Crypto
import EnclaveCore
import Foundation
import Hummingbird
import HummingbirdTesting
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
                key: parties.key(party)
            )
        }
        @Sendable func header(_ value: String) -> HTTPFields { [.init(CleanRoomServer.ownerSignatureHeader)!: value] }

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
                ("no signature", other, [:]),
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
                #expect(CleanRoomHostRoutesTests.code(refused.text) == "uploadSignature", "\(what): \(refused.text)")
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
}
