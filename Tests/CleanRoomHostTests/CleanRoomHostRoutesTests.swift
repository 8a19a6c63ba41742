import AttestationService
import CleanRoom
import CleanRoomHost
import CleanRoomInterface
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing

/// The untrusted host's REST API over a real clean room enclave: contract, signatures, halts, encrypted data sets,
/// size limits and named errors, and no plaintext in its store.
@Suite("Clean room host routes", .serialized)
struct CleanRoomHostRoutesTests {
    let parties = Parties()

    struct Harness {
        let host: CleanRoomHost
        let store: CleanRoomStore
        let fixture: CleanRoomEnclaveFixture
        let directory: String

        func close() async {
            try? await store.close()
            await fixture.enclave.terminate()
        }
    }

    static func harness(
        limits: CleanRoomHost.Limits = .init(),
        keyRelease: CleanRoomKeyRelease? = nil
    ) async throws -> Harness {
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        let store = try await CleanRoomStore.open(directory: directory)
        let fixture = try await CleanRoomEnclaveFixture.load(ocalls: CleanRoomHost.ocalls(directory: directory))
        let host = try await CleanRoomHost(
            store: store,
            enclave: fixture.enclave,
            limits: limits,
            keyRelease: keyRelease
        )
        return Harness(host: host, store: store, fixture: fixture, directory: directory)
    }

    static func send(
        _ client: some TestClientProtocol,
        _ method: HTTPRequest.Method,
        _ uri: String,
        _ body: [UInt8]? = nil,
        headers: HTTPFields = [:]
    ) async throws -> (status: Int, text: String, headers: HTTPFields) {
        let response = try await client.execute(
            uri: uri,
            method: method,
            headers: headers,
            body: body.map { ByteBuffer(bytes: $0) }
        )
        return (Int(response.status.code), String(buffer: response.body), response.headers)
    }

    /// The error code of an error body.
    static func code(_ text: String) -> String? {
        let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        return (object?["error"] as? [String: Any])?["code"] as? String
    }

    @Test func contractSignaturesOpenTheEnclaveAndHaltStopsIt() async throws {
        let harness = try await Self.harness()
        defer { Task { await harness.close() } }
        let contract = parties.contract(enclave: harness.fixture.requirement)
        let app = Application(router: CleanRoomServer.router(host: harness.host))
        try await app.test(.router) { client in
            // Nothing before the contract.
            let early = try await Self.send(client, .post, "/signatures", try parties.signatures(contract)[0])
            #expect(early.status == 409)
            #expect(Self.code(early.text) == "NoContract")
            let put = try await Self.send(client, .put, "/contract", contract.canonicalBytes)
            #expect(put.status == 200, "\(put.text)")
            #expect(put.text.contains(contract.id.hex))
            // The same contract again is fine; another one is refused.
            #expect(try await Self.send(client, .put, "/contract", contract.canonicalBytes).status == 200)
            var renamed = parties
            renamed.name = "another room"
            let other = try await Self.send(
                client,
                .put,
                "/contract",
                renamed.contract(enclave: harness.fixture.requirement).canonicalBytes
            )
            #expect(other.status == 409)
            #expect(Self.code(other.text) == "ContractExists")
            // Not canonical: refused by name.
            let spaced = try await Self.send(client, .put, "/contract", contract.canonicalBytes + [0x20])
            #expect(spaced.status == 400)
            #expect(["nonCanonical", "malformed"].contains(Self.code(spaced.text)), "\(spaced.text)")
            // A forged signature is refused and not stored.
            let forged = ContractSignature(
                contractID: contract.id,
                party: "bank-a",
                signature: Array(
                    try P256.Signing.PrivateKey().signature(for: ContractSignature.message(contractID: contract.id))
                        .rawRepresentation
                )
            )
            let bad = try await Self.send(client, .post, "/signatures", forged.canonicalBytes)
            #expect(bad.status == 400)
            #expect(Self.code(bad.text) == "badSignature")
            let notYet = try await Self.send(client, .get, "/attestation")
            #expect(notYet.status == 409)
            #expect(Self.code(notYet.text) == "NotOpen")
            for (index, signature) in try parties.signatures(contract).enumerated() {
                let answer = try await Self.send(client, .post, "/signatures", signature)
                #expect(answer.status == 200)
                #expect(answer.text.contains(index == 2 ? "active" : "draft"), "\(answer.text)")
            }
            let attestation = try await Self.send(client, .get, "/attestation")
            #expect(attestation.status == 200, "\(attestation.text)")
            #expect(attestation.text.contains(contract.id.hex))
            let status = try await Self.send(client, .get, "/status")
            #expect(status.text.contains("\"phase\":\"open\""), "\(status.text)")
            // A halt by one party: stored, delivered, the enclave halted.
            let halt = try await Self.send(client, .post, "/halts", try parties.halt(contract, by: "bank-b"))
            #expect(halt.status == 200)
            #expect(halt.text.contains("halted"))
            let after = try await Self.send(client, .get, "/status")
            #expect(after.text.contains("\"phase\":\"halted\""), "\(after.text)")
            #expect(after.text.contains("\"haltReason\":\"stop\""), "\(after.text)")
        }
        // A restarted host keeps the contract, signatures and halt, and does not reopen the enclave.
        let restarted = try await CleanRoomHost(store: harness.store, enclave: harness.fixture.enclave)
        #expect(try await restarted.state().phase == .halted)
    }

    @Test func hostRecordsTheEnclavesRefusalOfAContractNamingAnotherEnclave() async throws {
        let harness = try await Self.harness()
        defer { Task { await harness.close() } }
        let contract = parties.contract(
            enclave: .init(
                signerID: try Digest32(bytes: [UInt8](repeating: 9, count: 32)),
                productID: 1,
                minSecurityVersion: 1
            )
        )
        _ = try await harness.host.submitContract(contract.canonicalBytes)
        for signature in try parties.signatures(contract) { _ = try await harness.host.submitSignature(signature) }
        let refused = await #expect(throws: ServiceError.self) { _ = try await harness.host.attestation() }
        #expect(refused?.code == "NotOpen")
        let status = try await HostStatus.of(harness.host)
        #expect(status.enclave?.phase == .closed)
        #expect(status.enclaveRefusal?.hasPrefix("enclaveMismatch:") == true, "\(status.enclaveRefusal ?? "nil")")
    }

    @Test func dataSetsAreCheckedLimitedAndStoredAsCiphertextOnly() async throws {
        let harness = try await Self.harness(limits: .init(maxDataSetBytes: 64 << 10))
        defer { Task { await harness.close() } }
        let contract = parties.contract(enclave: harness.fixture.requirement)
        _ = try await harness.host.submitContract(contract.canonicalBytes)
        let marker = "4111-PLAINTEXT-CARD-\(UUID().uuidString)"
        let csv = Array("card,merchant,amount\n\(marker),coffee-shop,42\n".utf8)
        let dataKey = SymmetricKey(size: .bits256)  // the owner's: it never reaches the host
        let file = try DataFileEncryptor.encrypt(csv, dataKey: dataKey, contractID: contract.id, dataSet: "a_tx")
        let signed: HTTPFields = [
            .init("X-Owner-Signature")!: try parties.uploadSignature(file, dataSet: "a_tx", contract: contract),
            .init(CleanRoomServer.uploadDigestHeader)!: Parties.sha256(file),
        ]
        let app = Application(router: CleanRoomServer.router(host: harness.host))
        try await app.test(.router) { client in
            // Another data set's file under this name, another contract's file, junk, a truncated header.
            // (The owner's signature names the data set: checked before the body, so a_tx's under b_tx stops there.)
            let misnamed = try await Self.send(client, .put, "/datasets/b_tx", file, headers: signed)
            #expect(misnamed.status == 400)
            #expect(Self.code(misnamed.text) == "uploadSignature", "\(misnamed.text)")
            let foreign = try DataFileEncryptor.encrypt(
                csv,
                dataKey: dataKey,
                contractID: try Digest32(bytes: [UInt8](repeating: 3, count: 32)),
                dataSet: "a_tx"
            )
            let wrong = try await Self.send(client, .put, "/datasets/a_tx", foreign, headers: signed)
            #expect(Self.code(wrong.text) == "wrongContract", "\(wrong.text)")
            let junk = try await Self.send(
                client,
                .put,
                "/datasets/a_tx",
                Array("card,merchant\n".utf8),
                headers: signed
            )
            #expect(Self.code(junk.text) == "dataTampered", "\(junk.text)")
            let cut = try await Self.send(client, .put, "/datasets/a_tx", Array(file.prefix(20)), headers: signed)
            #expect(Self.code(cut.text) == "dataTampered", "\(cut.text)")
            let unknown = try await Self.send(client, .put, "/datasets/c_tx", file, headers: signed)
            #expect(unknown.status == 404)
            #expect(Self.code(unknown.text) == "UnknownDataSet")
            // Over the size limit: refused, nothing left behind.
            let big = try DataFileEncryptor.encrypt(
                [UInt8](repeating: 0x41, count: 100 << 10),
                dataKey: dataKey,
                contractID: contract.id,
                dataSet: "a_tx"
            )
            let tooBig = try await Self.send(client, .put, "/datasets/a_tx", big, headers: signed)
            #expect(tooBig.status == 413, "\(tooBig.text)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: harness.directory + "/datasets").isEmpty)
            // The real upload.
            let stored = try await Self.send(client, .put, "/datasets/a_tx", file, headers: signed)
            #expect(stored.status == 200, "\(stored.text)")
            #expect(stored.text.contains(SHA256.hash(data: file).map { String(format: "%02x", $0) }.joined()))
            let status = try await Self.send(client, .get, "/status")
            #expect(status.text.contains("\"uploaded\":true"))
        }
        let onDisk = try Data(contentsOf: URL(fileURLWithPath: harness.store.dataSetPath("a_tx")))
        #expect(Array(onDisk) == file)
        // Scan every file of the host's store for the plaintext row: none holds it.
        try await harness.store.close()
        let hits = try Self.filesContaining(Array(marker.utf8), under: harness.directory)
        #expect(hits.isEmpty, "plaintext found in \(hits)")
        let sanity = try Self.filesContaining(Array(contract.name.utf8), under: harness.directory)
        #expect(!sanity.isEmpty, "the scan finds what is stored (the contract's name)")
    }

    /// The files under `directory` whose bytes contain `needle`.
    static func filesContaining(_ needle: [UInt8], under directory: String) throws -> [String] {
        var hits: [String] = []
        let enumerator = FileManager.default.enumerator(atPath: directory)
        while let relative = enumerator?.nextObject() as? String {
            let path = directory + "/" + relative
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue
            else { continue }
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            if bytes.count >= needle.count,
                (0...(bytes.count - needle.count)).contains(where: {
                    bytes[$0..<$0 + needle.count].elementsEqual(needle)
                })
            {
                hits.append(relative)
            }
        }
        return hits
    }
}
