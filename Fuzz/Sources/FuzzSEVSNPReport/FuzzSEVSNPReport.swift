@testable import Attestation

/// SEV-SNP attestation reports (exactly 1184 bytes).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    guard let report = try? SEVSNPReport(bytes: bytes) else { return 0 }
    guard report.bytes == bytes, report.signatureR.count == 48, report.signatureS.count == 48 else {
        fatalError("a parsed SEV-SNP report does not keep its bytes or its signature")
    }
    return 0
}
