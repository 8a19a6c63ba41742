@testable import Attestation

/// X.509 CRLs in DER, hexadecimal DER or PEM, as PCS and PCCS serve them.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    guard let crl = try? CertificateRevocationList(bytes: bytes) else { return 0 }
    _ = crl.isCurrent(at: crl.thisUpdate)
    return 0
}
