import Attestation
import AttestationAPI
import Crypto
import EnclaveCore
import Foundation
import Testing

@testable import AttestationService

/// Init-time data becomes `x-ms-inittime` in a signed token, as the service read it. JSON parsers disagree on a
/// member named twice (Foundation keeps the first, Python and JavaScript the last), so such a document, though its
/// hash is the evidence's CONFIGID, would mean one thing to the service and another to a relying party: it is refused
/// (`DuplicateJSONKey`), as runtime data is.
@Suite("Attestation service: init-time data is read strictly")
struct InitTimeDataStrictJSONTests {
    /// Verified claims of simulated evidence whose CONFIGID is SHA-256 of `initTime` (the simulated platform sets no
    /// CONFIGID: the verified claims are changed after verification, as evidence measuring `initTime` would have them).
    static func claims(binding initTime: [UInt8], fixture: ServiceFixture) async throws -> Claims {
        let runtime = Array("r".utf8)
        var claims = try await fixture.core.verifyEvidence(
            type: .simulatedEnclave,
            evidence: try fixture.evidence(binding: runtime),
            at: Date()
        )
        #expect(claims.sgx != nil)
        claims.sgx?.configID = Array(SHA256.hash(data: initTime)) + [UInt8](repeating: 0, count: 32)
        return claims
    }

    @Test(
        arguments: [
            ("a plain duplicate", #"{"a":1,"a":2}"#, "a"),
            ("an escaped duplicate", #"{"a":1,"\u0061":2}"#, "a"),
            ("a duplicate in a nested object", #"{"config":{"admin":false,"admin":true}}"#, "admin"),
        ]
    )
    func aDuplicateMemberIsRefused(what: String, text: String, name: String) async throws {
        try await ServiceFixture.with { fixture in
            let data = Array(text.utf8)
            let claims = try await Self.claims(binding: data, fixture: fixture)
            for json in [true, false] {
                var token: [String: TokenValue] = [:]
                let refused = #expect(throws: ServiceError.self, "\(what), JSON \(json)") {
                    try fixture.core.bindInitTimeData((data, json), claims: claims, into: &token)
                }
                #expect(refused?.code == "DuplicateJSONKey", "\(what): \(String(describing: refused))")
                #expect(refused?.message.contains("init-time data") == true, "\(String(describing: refused))")
                #expect(refused?.message.contains("\"\(name)\"") == true, "\(String(describing: refused))")
                #expect(token["x-ms-inittime"] == nil && token["x-ms-inittime-data"] == nil)
            }
        }
    }

    /// The same members, once each, bind: the check refuses duplicates only.
    @Test func distinctMembersBind() async throws {
        try await ServiceFixture.with { fixture in
            let data = Array(#"{"a":1,"b":{"a":2}}"#.utf8)
            let claims = try await Self.claims(binding: data, fixture: fixture)
            var token: [String: TokenValue] = [:]
            try fixture.core.bindInitTimeData((data, true), claims: claims, into: &token)
            #expect(token["x-ms-inittime"] == .object(["a": .integer(1), "b": .object(["a": .integer(2)])]))
            var binary: [String: TokenValue] = [:]
            try fixture.core.bindInitTimeData((data, false), claims: claims, into: &binary)
            #expect(binary["x-ms-inittime-data"] == .string(Base64URL.encode(data)))
        }
    }
}
