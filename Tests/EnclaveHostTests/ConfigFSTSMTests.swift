import Attestation
import EnclaveCore
import EnclaveHost
import Foundation
import Synchronization
import TestInterface
import Testing

/// A fake configfs-tsm: a real directory tree that behaves like the kernel's report interface. Creating an entry
/// creates its attributes; writing `inblob` or `privlevel` bumps `generation` and produces `outblob`/`auxblob`.
/// `interferences` simulates another process rewriting the request while this one reads it.
final class FakeConfigFSTSM: ConfigFSTSM.FileSystem {
    let root: String
    let provider: String
    let outblob: [UInt8]
    let auxblob: [UInt8]
    private let posix = ConfigFSTSM.POSIX()
    private let state = Mutex<(inblobs: [[UInt8]], interferences: Int, entries: Int)>(([], 0, 0))

    init(provider: String, outblob: [UInt8], auxblob: [UInt8] = [], interferences: Int = 0) throws {
        root = NSTemporaryDirectory() + "fake-tsm-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        self.provider = provider
        self.outblob = outblob
        self.auxblob = auxblob
        state.withLock { $0.interferences = interferences }
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    /// Report data the "kernel" received, in order.
    var inblobs: [[UInt8]] { state.withLock { $0.inblobs } }
    /// Entries still present (the client must remove each one).
    var leftoverEntries: Int { (try? FileManager.default.contentsOfDirectory(atPath: root).count) ?? -1 }

    func makeDirectory(_ path: String) throws {
        try posix.makeDirectory(path)
        try Data("0\n".utf8).write(to: URL(fileURLWithPath: path + "/generation"))
        try Data((provider + "\n").utf8).write(to: URL(fileURLWithPath: path + "/provider"))
        _ = FileManager.default.createFile(atPath: path + "/inblob", contents: nil)
        _ = FileManager.default.createFile(atPath: path + "/privlevel", contents: nil)
    }

    func removeDirectory(_ path: String) throws { try FileManager.default.removeItem(atPath: path) }

    func write(_ bytes: [UInt8], to path: String) throws {
        try posix.write(bytes, to: path)
        let entry = (path as NSString).deletingLastPathComponent
        try bump(entry)
        if path.hasSuffix("/inblob") {
            state.withLock { $0.inblobs.append(bytes) }
            try Data(outblob).write(to: URL(fileURLWithPath: entry + "/outblob"))
            if !auxblob.isEmpty { try Data(auxblob).write(to: URL(fileURLWithPath: entry + "/auxblob")) }
        }
    }

    func read(_ path: String) throws -> [UInt8]? {
        if path.hasSuffix("/outblob") {
            let interfere = state.withLock { state in
                guard state.interferences > 0 else { return false }
                state.interferences -= 1
                return true
            }
            if interfere { try bump((path as NSString).deletingLastPathComponent) }  // another writer's inblob
        }
        return try posix.read(path)
    }

    func directoryExists(_ path: String) -> Bool { posix.directoryExists(path) }

    private func bump(_ entry: String) throws {
        let path = entry + "/generation"
        let current =
            UInt64(
                String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            ) ?? 0
        try Data("\(current + 1)\n".utf8).write(to: URL(fileURLWithPath: path))
    }
}

@Suite("configfs-tsm evidence on confidential VMs")
struct ConfigFSTSMTests {
    static let reportData = (0..<64).map { UInt8($0) }

    static func vector(_ path: String) throws -> [UInt8] { try Vectors.bytes(path) }

    @Test func reportReadsOutblobProviderAndGeneration() throws {
        let quote = try Self.vector("tdx/phala-dcap-qvl/tdx_quote")
        let fake = try FakeConfigFSTSM(provider: "tdx_guest", outblob: quote)
        let tsm = ConfigFSTSM(root: fake.root, fileSystem: fake)
        let report = try tsm.report(reportData: Self.reportData)
        #expect(report.provider == "tdx_guest")
        #expect(report.outblob == quote)
        #expect(report.auxblob.isEmpty)
        #expect(report.generation == 1)
        #expect(fake.inblobs == [Self.reportData])
        #expect(fake.leftoverEntries == 0)
        // A privilege level is one more write.
        let snp = try FakeConfigFSTSM(provider: "sev_guest", outblob: [1, 2, 3], auxblob: [4, 5])
        let leveled = try ConfigFSTSM(root: snp.root, fileSystem: snp).report(
            reportData: Self.reportData,
            privilegeLevel: 2
        )
        #expect(leveled.generation == 2 && leveled.auxblob == [4, 5])
    }

    /// Another writer between our write and our read moves `generation`: the result is discarded and the request
    /// made again; a writer that never stops makes the request fail by name.
    @Test func concurrentWriterIsDetected() throws {
        let once = try FakeConfigFSTSM(provider: "tdx_guest", outblob: [9], interferences: 1)
        let report = try ConfigFSTSM(root: once.root, fileSystem: once).report(reportData: Self.reportData)
        #expect(report.outblob == [9])
        #expect(once.inblobs.count == 2)  // retried once
        #expect(once.leftoverEntries == 0)

        let always = try FakeConfigFSTSM(provider: "tdx_guest", outblob: [9], interferences: 100)
        let error = #expect(throws: EnclaveError.self) {
            try ConfigFSTSM(root: always.root, fileSystem: always).report(reportData: Self.reportData)
        }
        #expect(error?.code == .unavailable)
        #expect(error?.reason.contains("another writer") == true)
        #expect(always.inblobs.count == ConfigFSTSM.maxAttempts)
        #expect(always.leftoverEntries == 0)
    }

    @Test func badRequestsAndMissingInterfacesFailClearly() throws {
        let fake = try FakeConfigFSTSM(provider: "tdx_guest", outblob: [1])
        let tsm = ConfigFSTSM(root: fake.root, fileSystem: fake)
        let shortData = #expect(throws: EnclaveError.self) { try tsm.report(reportData: [1, 2, 3]) }
        #expect(shortData?.code == .malformedInput, "\(String(describing: shortData))")
        let empty = try FakeConfigFSTSM(provider: "tdx_guest", outblob: [])
        let emptyReport = #expect(throws: EnclaveError.self) {
            try ConfigFSTSM(root: empty.root, fileSystem: empty).report(reportData: Self.reportData)
        }
        #expect(emptyReport?.code == .unavailable, "\(String(describing: emptyReport))")
        let missing = ConfigFSTSM(root: "/nonexistent/tsm/report")
        let error = #expect(throws: EnclaveError.self) { try missing.report(reportData: Self.reportData) }
        #expect(error?.code == .unavailable)
        #expect(ConfigFSTSM.detect(root: "/nonexistent/tsm/report") == nil)
        #expect(ConfigFSTSM.detect(root: fake.root)?.root == fake.root)
    }

    /// Through an enclave: with configfs-tsm as the evidence source, the runtime's evidence API returns the
    /// hardware's report with its provider and auxiliary certificate table, and the report verifies.
    @Test func enclaveEvidenceComesFromConfigFSTSM() async throws {
        let report = try Self.vector("snp/trustee/test-report.bin")
        let vcek = try Self.vector("snp/trustee/test-vcek.der")
        var table = SEVSNPCertificateTableFixture.vcekEntry(offset: 48, length: vcek.count)
        table += [UInt8](repeating: 0, count: 24) + vcek
        let fake = try FakeConfigFSTSM(provider: "sev_guest", outblob: report, auxblob: table)
        let signed = try Fixtures.sign()
        var options = Fixtures.options(signed)
        options.evidenceSource = .configFSTSM(ConfigFSTSM(root: fake.root, fileSystem: fake))
        let enclave = try await Enclave.load(path: signed.image, options: options)
        let evidence = try await enclave.call(Evidence.self, [0xAB])
        await enclave.terminate()
        #expect(evidence.provider == "sev_guest")
        #expect(evidence.bytes == report)
        #expect(fake.inblobs == [[0xAB] + [UInt8](repeating: 0, count: 63)])
        let certificates = try SEVSNPCertificateTable(bytes: evidence.auxiliaryData)
        let claims = try SEVSNPReport(bytes: evidence.bytes).verify(
            signingCertificate: try #require(certificates.vcek),
            at: Date(timeIntervalSince1970: 1_752_919_234)
        )
        #expect(claims.format == "sev-snp")

        // The default source on a machine without configfs-tsm is the simulated platform.
        var plain = Fixtures.options(signed)
        plain.evidenceSource = .automatic
        if ConfigFSTSM.detect() == nil {
            let simulated = try await Enclave.load(path: signed.image, options: plain)
            let quote = try await simulated.call(Evidence.self, [1])
            await simulated.terminate()
            #expect(quote.provider == AttestationEvidence.simulatedProvider)
            #expect(try DCAPQuote(bytes: quote.bytes).sgxReport != nil)
        }
    }
}

/// Builds configfs-tsm certificate table entries.
enum SEVSNPCertificateTableFixture {
    /// The VCEK GUID 63da758d-e664-4564-adc5-f4b93be8accd as stored, and the entry's offset and length.
    static func vcekEntry(offset: Int, length: Int) -> [UInt8] {
        [0x8D, 0x75, 0xDA, 0x63, 0x64, 0xE6, 0x64, 0x45, 0xAD, 0xC5, 0xF4, 0xB9, 0x3B, 0xE8, 0xAC, 0xCD]
            + withUnsafeBytes(of: UInt32(offset).littleEndian, Array.init)
            + withUnsafeBytes(of: UInt32(length).littleEndian, Array.init)
    }
}
