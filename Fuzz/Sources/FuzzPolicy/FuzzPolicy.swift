// The policy language sources are compiled into this module: PolicyParser.swift, AttestationPolicy.swift,
// AttestationPolicy+Evaluation.swift and PolicyClaim.swift here link to Sources/AttestationService/Policy.

/// Incoming claims for evaluating the policies that parse: a few of each value type.
private let claims: [PolicyClaim] = [
    PolicyClaim(type: "x-ms-sgx-is-debuggable", value: .bool(false)),
    PolicyClaim(type: "x-ms-sgx-mrsigner", value: .string("abcd")),
    PolicyClaim(type: "x-ms-sgx-svn", value: .integer(3)),
    PolicyClaim(type: "x-ms-sgx-product-id", value: .integer(7)),
    PolicyClaim(type: "a", value: .string("x")),
    PolicyClaim(type: "b", value: .string("x")),
]

/// The MAA policy language: any text, parsed; a policy that parses is evaluated over a few claims.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: start, count: count), as: UTF8.self)
    do {
        let policy = try AttestationPolicy(text: text)
        _ = policy.evaluate(claims)
    } catch {
        guard error.line >= 1, error.column >= 1, !error.message.isEmpty else {
            fatalError("a policy syntax error without a position or message: \(error)")
        }
    }
    return 0
}
