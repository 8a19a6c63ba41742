@testable import Attestation

/// Azure HCL reports (header, SEV-SNP report or TD report, runtime data) and the vTPM key in their runtime data.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    guard let report = try? AzureHCLReport(bytes: bytes) else { return 0 }
    _ = try? report.attestationKey()
    _ = report.bindsRuntimeData(to: [UInt8](repeating: 0, count: 64))
    return 0
}
