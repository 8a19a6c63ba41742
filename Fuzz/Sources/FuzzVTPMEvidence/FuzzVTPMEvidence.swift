@testable import Attestation

/// Azure vTPM evidence documents (TPM quote, HCL report, VCEK or TD quote), as JSON.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    _ = AzureVTPMEvidence.looksLikeEvidence(bytes)
    _ = try? AzureVTPMEvidence.parseIfPresent(json: bytes)
    guard let evidence = try? AzureVTPMEvidence(json: bytes) else { return 0 }
    _ = try? evidence.hcl.attestationKey()
    return 0
}
