import AttestationService
import CleanRoom
import CleanRoomHost
import Crypto
import EnclaveCore
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// Finding F: an anonymous upload must not write a byte before its owner's signature verifies (the signature covers
/// the SHA-256 the upload declares up front), and a data set takes one upload at a time, so that garbage uploads
/// can't fill the host's disk.
@Suite("Clean room upload gate", .serialized)
struct UploadGateTests {
    let parties = Parties()

    /// How often a body was asked for its next chunk, and a stream of those requests.
    final class Pulls: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        let events: AsyncStream<Int>
        private let continuation: AsyncStream<Int>.Continuation

        init() { (events, continuation) = AsyncStream<Int>.makeStream() }

        var count: Int { lock.withLock { value } }

        func pulled() {
            let count = lock.withLock {
                value += 1
                return value
            }
            continuation.yield(count)
        }
    }

    /// A body that reports each chunk asked for and yields what the test sends it.
    struct ProbeBody: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        typealias Failure = any Error
        let chunks: AsyncThrowingStream<ByteBuffer, any Error>
        let pulls: Pulls

        struct AsyncIterator: AsyncIteratorProtocol {
            typealias Element = ByteBuffer
            typealias Failure = any Error
            var base: AsyncThrowingStream<ByteBuffer, any Error>.AsyncIterator
            let pulls: Pulls

            mutating func next() async throws -> ByteBuffer? {
                pulls.pulled()
                return try await base.next()
            }
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: chunks.makeAsyncIterator(), pulls: pulls) }

        /// A body of `bytes` in one chunk.
        static func of(_ bytes: [UInt8]) -> (ProbeBody, Pulls) {
            let pulls = Pulls()
            return (ProbeBody(chunks: DataSetLoadTests.body(bytes), pulls: pulls), pulls)
        }
    }

    static func hex(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }

    /// The `.upload-` temporary files left in the data set directory.
    static func temporaries(_ directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory + "/datasets").filter { $0.contains(".upload-") }
    }

    func encrypted(_ contract: Contract, rows: Int = 5) throws -> [UInt8] {
        let csv = Array(
            ("card,merchant,amount\n" + (0..<rows).map { "card-\($0),coffee,\($0)\n" }.joined()).utf8
        )
        return try DataFileEncryptor.encrypt(
            csv,
            dataKey: SymmetricKey(size: .bits256),
            contractID: contract.id,
            dataSet: "a_tx"
        )
    }

    static func code(_ error: ServiceError?) -> String? { error?.code }

    /// A clean room host with `parties`' contract submitted, and an encrypted file of bank-a's `a_tx` under it: what
    /// every upload here starts from. The harness is closed afterwards.
    func withContract(
        _ body: (CleanRoomHostRoutesTests.Harness, Contract, [UInt8]) async throws -> Void
    ) async throws {
        let harness = try await CleanRoomHostRoutesTests.harness()
        defer { Task { await harness.close() } }
        let contract = parties.contract(enclave: harness.fixture.requirement)
        _ = try await harness.host.submitContract(contract.canonicalBytes)
        try await body(harness, contract, try encrypted(contract))
    }

    /// Upload `body` to `host` as `a_tx`, declaring the digest of `file` signed by `signature`.
    static func upload(
        _ file: [UInt8],
        signature: String,
        to host: CleanRoomHost,
        body: some AsyncSequence<ByteBuffer, any Error> & Sendable
    ) async throws -> CleanRoomStore.DataSetRecord {
        try await host.storeDataSet(name: "a_tx", ownerSignature: signature, sha256: hex(file), body: body)
    }

    @Test func anUploadWhoseSignatureFailsReadsNoByte() async throws {
        try await withContract { harness, contract, file in
            // bank-b signs bank-a's data set: the signature can't verify for a_tx.
            let signature = try DataSetUploadSigning.sign(
                contractID: contract.id,
                dataSet: "a_tx",
                sha256: Self.hex(file),
                version: 1,
                key: parties.key("bank-b")
            )
            let (body, pulls) = ProbeBody.of(file)
            let error = await #expect(throws: ServiceError.self) {
                try await Self.upload(file, signature: signature, to: harness.host, body: body)
            }
            #expect(Self.code(error) == "uploadSignature")
            #expect(pulls.count == 0, "the body was read before the signature was checked")
            #expect(try Self.temporaries(harness.directory).isEmpty)
            #expect(try await harness.store.dataSets().isEmpty)
        }
    }

    @Test func oneUploadInFlightPerDataSet() async throws {
        try await withContract { harness, contract, file in
            let signature = try parties.uploadSignature(file, dataSet: "a_tx", contract: contract)
            // The first upload sends its first chunk and then holds.
            let (chunks, continuation) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
            let pulls = Pulls()
            continuation.yield(ByteBuffer(bytes: file[..<100]))
            let host = harness.host
            let first = Task {
                try await Self.upload(
                    file,
                    signature: signature,
                    to: host,
                    body: ProbeBody(chunks: chunks, pulls: pulls)
                )
            }
            // Wait until it asked for its second chunk: it is in flight.
            for await count in pulls.events where count >= 2 { break }

            let (second, secondPulls) = ProbeBody.of(file)
            let error = await #expect(throws: ServiceError.self) {
                try await Self.upload(file, signature: signature, to: host, body: second)
            }
            #expect(Self.code(error) == "uploadInProgress")
            #expect(error?.statusCode == 409)
            #expect(secondPulls.count == 0)

            // The first completes; afterwards the data set takes an upload again.
            continuation.yield(ByteBuffer(bytes: file[100...]))
            continuation.finish()
            let record = try await first.value
            #expect(record.sha256 == Self.hex(file))
            let (third, _) = ProbeBody.of(file)
            let again = try await Self.upload(file, signature: signature, to: host, body: third)
            #expect(again.sha256 == Self.hex(file))
            #expect(try Self.temporaries(harness.directory).isEmpty)
        }
    }

    /// The body's digest must be the one declared and signed: other bytes are refused by name once read, the partial
    /// file removed and the stored upload kept.
    @Test func aBodyOtherThanTheSignedDigestIsRefusedAndRemoved() async throws {
        try await withContract { harness, contract, file in
            let other = try encrypted(contract, rows: 6)
            let signature = try parties.uploadSignature(file, dataSet: "a_tx", contract: contract)
            _ = try await Self.upload(file, signature: signature, to: harness.host, body: DataSetLoadTests.body(file))
            let error = await #expect(throws: ServiceError.self) {
                try await Self.upload(file, signature: signature, to: harness.host, body: DataSetLoadTests.body(other))
            }
            #expect(Self.code(error) == "uploadDigest")
            #expect(try Self.temporaries(harness.directory).isEmpty)
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: harness.store.dataSetPath("a_tx")))) == file)
            #expect(try await harness.store.dataSets().first?.sha256 == Self.hex(file))
        }
    }

    /// Over HTTP: an upload without `X-Upload-SHA256` (a client older than this check) or with a malformed one is
    /// refused by name before its body is read.
    @Test func anUploadWithoutADeclaredDigestIsRefusedByName() async throws {
        try await withContract { harness, contract, file in
            let signature = try parties.uploadSignature(file, dataSet: "a_tx", contract: contract)
            let app = Application(router: CleanRoomServer.router(host: harness.host))
            try await app.test(.router) { client in
                @Sendable func headers(digest: String?) -> HTTPFields {
                    var fields: HTTPFields = [.init(CleanRoomServer.ownerSignatureHeader)!: signature]
                    if let digest { fields[.init(CleanRoomServer.uploadDigestHeader)!] = digest }
                    return fields
                }
                for (what, headers) in [
                    ("an old client: no declared digest", headers(digest: nil)),
                    ("an upper-case digest", headers(digest: Self.hex(file).uppercased())),
                    ("a short digest", headers(digest: String(Self.hex(file).dropLast(2)))),
                    ("not hex", headers(digest: String(repeating: "z", count: 64))),
                ] {
                    let refused = try await CleanRoomHostRoutesTests.send(
                        client,
                        .put,
                        "/datasets/a_tx",
                        file,
                        headers: headers
                    )
                    #expect(refused.status == 400, "\(what): \(refused.text)")
                    #expect(CleanRoomHostRoutesTests.code(refused.text) == "uploadDigest", "\(what): \(refused.text)")
                }
                #expect(try Self.temporaries(harness.directory).isEmpty)
                let stored = try await CleanRoomHostRoutesTests.send(
                    client,
                    .put,
                    "/datasets/a_tx",
                    file,
                    headers: headers(digest: Self.hex(file))
                )
                #expect(stored.status == 200, "\(stored.text)")
            }
        }
    }

    /// The clean room serves uploads under a minimum rate rather than only the fixed 30 s body deadline (which cut a
    /// 1 GiB upload below 35 MB/s): at 1 MiB/s the default 1 GiB limit fits.
    @Test func uploadsGetAMinimumRateThatFitsTheSizeLimit() throws {
        let limits = CleanRoomServer.defaultLimits
        #expect(limits.minimumBodyRate == 1 << 20)
        #expect(limits.bodyTimeout == .seconds(30))
        let seconds = CleanRoomHost.Limits().maxDataSetBytes / Int64(try #require(limits.minimumBodyRate))
        #expect(seconds == 1024)
    }
}
