@testable import Attestation

/// AMD certificates (ARK, ASK, VCEK, VLEK): one DER certificate, or a PEM bundle.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    if let certificate = try? AMDCertificate(derEncoded: bytes) {
        guard certificate.derBytes == bytes else { fatalError("a parsed certificate does not keep its bytes") }
        _ = certificate.isSigned(by: certificate)
    }
    if let certificates = try? AMDCertificate.parseAll(bytes), certificates.count > 1 {
        _ = certificates[1].isSigned(by: certificates[0])
    }
    return 0
}
