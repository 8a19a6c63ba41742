@testable import Attestation

/// Intel DCAP quotes (SGX and TDX, versions 3 to 5). A quote that parses must parse again from its own bytes to
/// the same value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    guard let quote = try? DCAPQuote(bytes: bytes) else { return 0 }
    guard let again = try? DCAPQuote(bytes: quote.bytes), again == quote else {
        fatalError("a parsed quote does not parse again from its own bytes to the same value")
    }
    _ = quote.signedBytes.count
    return 0
}
