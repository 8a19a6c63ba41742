@testable import Attestation

/// Collateral bundles in the dcap-qvl JSON layout, and PCS bodies `{"tcbInfo": {…}, "signature": "hex"}` split
/// into their signed object. Whatever parses is then read on: TCB info, QE identity, issuer chains, CRLs.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    for key in ["tcbInfo", "enclaveIdentity"] {
        _ = try? Collateral.signedObject(bytes, key: key)
    }
    guard let collateral = try? Collateral(dcapQVLJSON: bytes) else { return 0 }
    _ = try? TCBInfo(jsonBytes: collateral.tcbInfoBytes)
    _ = try? QEIdentity(jsonBytes: collateral.qeIdentityBytes)
    _ = try? CertificateRevocationList(bytes: collateral.rootCACRL)
    _ = try? CertificateRevocationList(bytes: collateral.pckCRL)
    return 0
}
