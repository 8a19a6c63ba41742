import Foundation

@testable import Attestation

/// Write certificate tables built from the vectors' AMD certificates into `FUZZ_SEED_DIR` (the vectors have no
/// table of their own): VCEK, ASK and ARK; a VLEK; and a table with an unknown GUID first.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutableRawPointer?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    let environment = ProcessInfo.processInfo.environment
    guard let directory = environment["FUZZ_SEED_DIR"], let vectors = environment["FUZZ_VECTORS"] else { return 0 }
    func read(_ path: String) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: "\(vectors)/\(path)") else {
            fatalError("seed vector \(path) is missing")
        }
        return [UInt8](data)
    }
    guard let chain = try? AMDCertificate.parseAll(read("snp/google-go-sev-guest/milan.testcer")), chain.count == 2
    else { fatalError("the Milan ASK/ARK seed does not parse") }
    let vcek = read("snp/virtee-sev/vcek_milan.der")
    let tables = [
        table([
            (SEVSNPCertificateTable.vcekGUID, vcek), (SEVSNPCertificateTable.askGUID, chain[0].derBytes),
            (SEVSNPCertificateTable.arkGUID, chain[1].derBytes),
        ]),
        table([(SEVSNPCertificateTable.vlekGUID, read("snp/trustee/test-vlek.der"))]),
        table([([UInt8](repeating: 0x11, count: 16), [1, 2, 3]), (SEVSNPCertificateTable.vcekGUID, vcek)]),
    ]
    for (index, bytes) in tables.enumerated() {
        FileManager.default.createFile(atPath: "\(directory)/seed-\(index)", contents: Data(bytes))
    }
    return 0
}

/// A table: 24-byte entries, an all-zero terminator, then the certificates.
private func table(_ entries: [([UInt8], [UInt8])]) -> [UInt8] {
    var offset = (entries.count + 1) * 24
    var head: [UInt8] = []
    var body: [UInt8] = []
    for (guid, der) in entries {
        head += guid + littleEndian(UInt32(offset)) + littleEndian(UInt32(der.count))
        body += der
        offset += der.count
    }
    return head + [UInt8](repeating: 0, count: 24) + body
}

private func littleEndian(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) } }

/// The certificate table of an extended SEV-SNP report (GUID, offset, length entries pointing at DER certificates).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    _ = SEVSNPCertificateTable.looksLikeTable(bytes)
    _ = try? SEVSNPCertificateTable(bytes: bytes)
    return 0
}
