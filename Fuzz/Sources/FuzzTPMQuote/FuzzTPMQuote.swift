@testable import Attestation

/// TPM 2.0 quotes (`TPMS_ATTEST`), with 24 SHA-256 PCR values; the signature is checked against a fixed key.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    let pcrs = [[UInt8]](repeating: [UInt8](repeating: 0, count: 32), count: 24)
    guard let quote = try? TPMQuote(message: bytes, signature: [UInt8](repeating: 1, count: 256), pcrs: pcrs) else {
        return 0
    }
    guard quote.selectedPCRs.allSatisfy({ $0 < pcrs.count }), quote.nonce.count <= 64 else {
        fatalError("a parsed TPM quote selects PCRs it does not have or has an oversized nonce")
    }
    // An RSA-2048 key of all-one bits: the check must fail cleanly.
    let key = ["kty": "RSA", "n": String(repeating: "_", count: 342) + "8", "e": "AQAB"]
    if (try? quote.verify(attestationKey: key)) != nil { fatalError("a TPM quote verified under a made-up key") }
    return 0
}
