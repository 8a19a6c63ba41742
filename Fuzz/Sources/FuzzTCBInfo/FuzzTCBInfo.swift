@testable import Attestation

/// Intel TCB info: the `tcbInfo` object, or a PCS body holding it (split as `Collateral(directory:)` does).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    let object = (try? Collateral.signedObject(bytes, key: "tcbInfo"))?.object ?? bytes
    guard let info = try? TCBInfo(jsonBytes: object) else { return 0 }
    let components = [Int](repeating: 0, count: 16)
    _ = info.matchingLevel(components: components, pceSVN: 0)
    _ = info.matchingTDXLevel(components: components, pceSVN: 0, teeTCBSVN: [UInt8](repeating: 0, count: 16))
    return 0
}
