import EnclaveCore
import Testing

@testable import AttestationClient

/// The broker identity a key import requires: signer *and* product, the way the threat model says ("a signer without
/// a product is refused"). One signer may sign other enclaves (a sample that attests host-chosen data, a test
/// build); with the signer alone, such an enclave would pass for the broker and bind the host's own import key
/// (review 6, D).
@Suite("AttestationClient: the key broker's expected identity")
struct KeyBrokerExpectationTests {
    static let signer = "ab" + String(repeating: "01", count: 31)

    /// Claims of an enclave of the broker's signer, product `product` (none when `nil`), SVN 3, not debuggable.
    static func claims(product: Int?) -> AttestationTokenClaims {
        var claims: [String: TokenValue] = [
            "x-ms-sgx-mrsigner": .string(signer),
            "x-ms-sgx-svn": .integer(3),
            "x-ms-sgx-is-debuggable": .bool(false),
        ]
        if let product { claims["x-ms-sgx-product-id"] = .integer(product) }
        return AttestationTokenClaims(claims)
    }

    static func expectRefused(_ claims: AttestationTokenClaims, _ expectation: KeyBrokerExpectation) {
        let failure = #expect(throws: AttestationClient.Failure.self) { try KeyBrokerClient.check(claims, expectation) }
        #expect(failure?.code == KeyBrokerClient.ImportRefusal.identityMismatch, "\(String(describing: failure))")
    }

    /// Failed before: `KeyBrokerExpectation(signerID:)` left the product `nil` and the check skipped it, so both
    /// claims below passed. The library now cannot express an expectation without a product.
    @Test("Another enclave of the broker's signer (another product, or none stated) is refused")
    func anotherProductOfTheSignerIsRefused() throws {
        let expectation = KeyBrokerExpectation(signerID: try Digest32(hex: Self.signer), productID: 70)
        Self.expectRefused(Self.claims(product: 99), expectation)
        Self.expectRefused(Self.claims(product: nil), expectation)
        // The broker's own product passes.
        try KeyBrokerClient.check(Self.claims(product: 70), expectation)
    }
}
