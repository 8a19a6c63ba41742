@testable import Attestation

/// Intel QE identity: the `enclaveIdentity` object, or a PCS body holding it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    let object = (try? Collateral.signedObject(bytes, key: "enclaveIdentity"))?.object ?? bytes
    _ = try? QEIdentity(jsonBytes: object)
    return 0
}
