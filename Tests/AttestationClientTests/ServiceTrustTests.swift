import AttestationClient
import Foundation
import Testing

/// How a client trusts the service: a pin or trust files it can't use are refused by name (`BadTrust`), before any
/// connection is made.
@Suite("AttestationClient: service trust settings")
struct ServiceTrustTests {
    /// The refusal of `body`, which must be an ``AttestationClient/Failure`` with code `BadTrust`.
    func expectBadTrust(_ body: () throws -> ServiceTrust, sourceLocation: SourceLocation = #_sourceLocation) {
        let failure = #expect(throws: AttestationClient.Failure.self, sourceLocation: sourceLocation) { try body() }
        #expect(failure?.code == "BadTrust", "\(String(describing: failure))", sourceLocation: sourceLocation)
        #expect(failure?.status == 0, sourceLocation: sourceLocation)
    }

    @Test func badPinsAndTrustFilesAreNamed() throws {
        expectBadTrust { try ServiceTrust.pinned(sha256: "abc") }
        expectBadTrust { try ServiceTrust.pinned(sha256: String(repeating: "g", count: 64)) }
        expectBadTrust { try ServiceTrust.pinned(sha256: String(repeating: "a", count: 66)) }
        expectBadTrust { try ServiceTrust.certificates(pem: "not a certificate") }
        expectBadTrust { try ServiceTrust.certificateFile("/nonexistent/enclavekit-\(UUID().uuidString).pem") }
        _ = try ServiceTrust.pinned(sha256: (0..<32).map { String(format: "%02X", $0) }.joined(separator: ":"))
    }
}
