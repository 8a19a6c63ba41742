import AttestationAPI
import Crypto
import EnclaveCore
import Foundation
import KeyBrokerInterface
import Testing
import _CryptoExtras

@testable import KeyBroker
@testable import KeyReleaseFormats

/// The release path's fast parts (issue 12 item 12) read and write exactly what the `Codable` paths they replace
/// did, refuse what those refused, and the policy cache never lets a changed policy or a stale token through.
@Suite("KeyBroker: release fast path")
struct ReleaseFastPathTests {
    typealias Code = BrokerRefusal.Code

    static func decoded(_ text: String) -> TokenValue? {
        try? JSONDecoder().decode(TokenValue.self, from: Data(text.utf8))
    }

    static func fast(_ text: String) -> TokenValue? {
        try? TokenJSON.parse(Array(text.utf8), maximumDepth: 35)
    }

    @Test func theReaderMakesWhatJSONDecoderMakes() {
        let documents = [
            #"{"a":1,"b":-2,"c":2.5,"d":true,"e":false,"f":null,"g":"x","h":[1,"y",[],{}],"i":{"j":{"k":[null]}}}"#,
            #"{"n":[0,-0,2.0,1e2,1E+2,0.1e1,1.5e1,100e-2,-0.0,9223372036854775807,-9223372036854775808]}"#,
            #"{"n":[9223372036854775808,12345678901234567890,1e19,2.5,1e-300,0.000001,-1.25e-3,123456789.125]}"#,
            #"{"n":[9007199254740993,9007199254740993.0,4611686018427387904e1,0e5,0.0e-5]}"#,
            #"{"s":["\u00e9\ud83d\ude00","\/\\\"\b\f\n\r\t","\u0000\u001f","é😀","a\u2028b",""]}"#,
            " \t\r\n{ \"spaced\" : [ 1 , 2 ] }\n ", "[]", "{}", "\"text\"", "12", "-3.5", "true", "null",
        ]
        for document in documents {
            let expected = Self.decoded(document)
            #expect(expected != nil, "JSONDecoder refused \(document)")
            #expect(Self.fast(document) == expected, "\(document)")
        }
        // Where JSONDecoder is inexact (it reads numbers as Decimal, 38 digits), the reader is exact: a number that
        // is not a whole number is a double, and one past Double's range is refused.
        #expect(Self.decoded("1.0000000000000000000000000000000000000000001") == .integer(1))
        #expect(Self.fast("1.0000000000000000000000000000000000000000001") == .double(1))
        #expect(Self.fast("1e-400") == .double(0))
    }

    @Test func theReaderRefusesWhatJSONDecoderRefuses() {
        let documents = [
            "", " ", "{", "}", "[1", "[1 2]", "{\"a\" 1}", "{\"a\":}", "{1:2}", "01", "[01]", "[1] x", "[1e]", "[-]",
            "[.5]", "[1.]", "[\"\\x\"]", "[tru]", "[NaN]", "[1e400]", "[-1e400]", "\"\\ud800\"", "\"\\udc00\"",
            "\"\\ud800\\u0041\"", "\"a\u{01}\"", "\"unterminated", "\"\\u12\"", "'single'", "[+1]", "[Infinity]",
        ]
        for document in documents {
            #expect(Self.decoded(document) == nil, "JSONDecoder took \(document.debugDescription)")
            #expect(Self.fast(document) == nil, "TokenJSON took \(document.debugDescription)")
        }
        // Invalid UTF-8 in a string.
        #expect(throws: TokenJSON.Failure.self) {
            try TokenJSON.parse([0x22, 0xC3, 0x28, 0x22], maximumDepth: 4)
        }
    }

    @Test func theReaderIsStricterWhereJSONDecoderIsLenient() throws {
        // JSONDecoder keeps one of two members of the same name and takes trailing commas; the token reader doesn't.
        for document in [#"{"a":1,"a":2}"#, #"{"a":1,"\u0061":2}"#, "[1,]", #"{"a":1,}"#, #"{"o":{"k":1,"k":1}}"#] {
            #expect(Self.decoded(document) != nil)
            #expect(Self.fast(document) == nil, "\(document)")
        }
        let failure = try #require(throws: TokenJSON.Failure.self) {
            try TokenJSON.parse(Array(#"{"iss":"a","iss":"b"}"#.utf8), maximumDepth: 4)
        }
        #expect(failure.reason.contains("duplicate member \"iss\""))
    }

    @Test func hostileNestingAndNumbersEndPromptly() throws {
        let deep = Array(repeating: UInt8(ascii: "["), count: 200_000)
        let failure = try #require(throws: TokenJSON.Failure.self) { try TokenJSON.parse(deep, maximumDepth: 35) }
        #expect(failure.reason.contains("nesting deeper than 35"))
        #expect(Self.fast(String(repeating: "[", count: 35) + String(repeating: "]", count: 35)) != nil)
        #expect(Self.fast(String(repeating: "[", count: 36) + String(repeating: "]", count: 36)) == nil)
        // A number with 200,000 zeros: read in linear time (no quadratic trimming), as the double it is. Measured in
        // this thread's CPU time, which a loaded machine (the whole suite in parallel on two cores) does not inflate.
        let used = Self.threadCPUTime {
            let long = "[0." + String(repeating: "0", count: 200_000) + "1]"
            #expect(Self.fast(long) == .array([.double(0)]))
            let whole = "[1" + String(repeating: "0", count: 100_000) + "e-100000]"
            #expect(Self.fast(whole) == Self.decoded(whole))
        }
        #expect(used < .seconds(5), "took \(used) of CPU time")
    }

    /// The CPU time this thread spends in `body`: unlike the wall clock, it grows only with the work.
    static func threadCPUTime(_ body: () throws -> Void) rethrows -> Duration {
        func now() -> Duration {
            var time = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
            return .seconds(time.tv_sec) + .nanoseconds(time.tv_nsec)
        }
        let start = now()
        try body()
        return now() - start
    }

    @Test func theWriterWritesWhatJSONEncoderWrites() {
        var generator = SystemRandomNumberGenerator()
        func value(_ depth: Int) -> TokenValue {
            let names = ["a", "B", "_", "a b", "a#", "a01", "a1", "a10", "x5c", "x5t#S256", "kid", "key_ops"]
            switch Int.random(in: 0..<(depth > 3 ? 5 : 7), using: &generator) {
            case 0:
                let pieces = [
                    "plain", "\"", "\\", "/", "\n\t\r\u{08}\u{0C}", "\u{01}\u{1F}", "é😀", "\u{2028}", "\u{7F}",
                ]
                return .string((0..<3).map { _ in pieces.randomElement(using: &generator)! }.joined())
            case 1: return .integer(Int.random(in: Int.min...Int.max, using: &generator))
            case 2: return .double([0.5, -1.25e-7, 1e300, 123.456].randomElement(using: &generator)!)
            case 3: return .bool(Bool.random(using: &generator))
            case 4: return .null
            case 5: return .array((0..<Int.random(in: 0..<4, using: &generator)).map { _ in value(depth + 1) })
            default:
                var members: [String: TokenValue] = [:]
                for _ in 0..<Int.random(in: 0..<6, using: &generator) {
                    members[names.randomElement(using: &generator)!] = value(depth + 1)
                }
                return .object(members)
            }
        }
        for _ in 0..<300 {
            let sample = value(0)
            #expect(TokenJSON.text(sample) == sample.jsonText)
            if case .object = sample { #expect(Self.fast(sample.jsonText) == sample) }
        }
        // A non-ASCII member name: JSONEncoder decides the order, so the writer hands the object to it.
        let accented: TokenValue = .object(["é": .integer(1), "z": .integer(2), "e": .integer(3)])
        #expect(TokenJSON.text(accented) == accented.jsonText)
    }

    @Test func base64URLReadsAsBase64URLDecodeReads() {
        let alphabet = Array("ABCXYZabcxyz0189-_+/=.!".utf8)
        for _ in 0..<3000 {
            let text = String(
                decoding: (0..<Int.random(in: 0..<14)).map { _ in alphabet.randomElement()! },
                as: UTF8.self
            )
            // Base64URL.decode lets `-` and `_` follow the padding ("a=_"); the token reader refuses that.
            let afterPadding = text.firstIndex(of: "=").map { text[$0...].contains { "-_".contains($0) } } ?? false
            let expected = afterPadding ? nil : Base64URL.decode(text)
            #expect(ReleaseTokenVerifier.base64URL(ArraySlice(text.utf8)) == expected, "\(text.debugDescription)")
        }
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255) }
            #expect(ReleaseTokenVerifier.base64URL(ArraySlice(Base64URL.encode(bytes).utf8)) == bytes)
        }
    }

    @Test func runtimeKeysReadAsJSONDecoderReadsThem() throws {
        let keys = [
            #"{"kty":"EC","crv":"P-256","x":"AA","y":"BB","kid":"k","use":"enc","key_ops":["wrapKey"],"extra":5}"#,
            #"{"kty":"RSA","n":"AQAB","e":"AQAB","kid":null,"key_ops":null}"#, #"{"kty":"EC"}"#,
            #"{"kty":5}"#, #"{"crv":"P-256"}"#, #"{"kty":"EC","kid":7}"#, #"{"kty":"EC","key_ops":"wrapKey"}"#,
            #"{"kty":"EC","key_ops":["a",1]}"#, #"{"kty":"EC","x":true}"#, #"{"kty":null}"#,
        ]
        for key in keys {
            let expected = try? JSONDecoder().decode(WrapJWK.self, from: Data(key.utf8))
            guard case .object(let members)? = Self.decoded(key) else {
                Issue.record("\(key) is not an object")
                continue
            }
            #expect(KeyBroker.jwk(members) == expected, "\(key)")
        }
    }

    @Test func theJWEHeaderIsWhatJSONEncoderWrites() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let epk = WrapJWK(kty: "EC", crv: "P-256", x: "x/\"", y: "y\u{01}")
        for kid in [nil, "release", "a/b", "q\"uote", "back\\slash", "ctl\u{01}\n\t", "é😀"] {
            for cty in [nil, "application/json"] {
                let header = ECDHESJWE.Header(alg: "ECDH-ES+A256KW", enc: "A256GCM", epk: epk, kid: kid, cty: cty)
                #expect(try ECDHESJWE.json(header) == (try encoder.encode(header)))
            }
        }
        let recipient = P256.KeyAgreement.PrivateKey()
        let jwe = try ECDHESJWE.encrypt([1, 2, 3], to: .p256(recipient.publicKey), keyID: "k\"1")
        let opened = try ECDHESJWE.decrypt(jwe, with: recipient)
        #expect(opened.plaintext == [1, 2, 3])
        #expect(opened.header.kid == "k\"1")
    }

    /// The policy cache is keyed by the policy's bytes: a key whose policy changed is judged by the new policy at
    /// once, a policy that does not parse is refused every time, and tokens are never cached (a token that passed
    /// is refused once it has expired).
    @Test func cachedPoliciesNeverLetAChangedPolicyOrAStaleTokenThrough() throws {
        let authority = TestAuthority.shared
        let target = P256.KeyAgreement.PrivateKey()
        let token = try authority.token(authority.claims(keys: [TestKeys.jwk(WrapJWK(p256: target.publicKey))]))
        let broker = KeyReleaseTests.broker
        func release(_ key: StoredKey, now: Date = Date()) -> BrokerReleaseResponse {
            broker.release(BrokerReleaseRequest(key: key, target: token), now: now)
        }
        let loose = try KeyReleaseTests.importedKey(policy: TestKeys.policy(minimumSVN: 2))
        #expect(release(loose).value != nil)
        #expect(release(loose).value != nil)
        // The same key material under a stricter policy (svn 3 < 5): refused, although the looser one is cached.
        let strict = try KeyReleaseTests.importedKey(policy: TestKeys.policy(minimumSVN: 5))
        let refused = release(strict)
        #expect(refused.value == nil)
        #expect(refused.refusal?.code == Code.policyNotSatisfied)
        #expect(release(loose).value != nil)
        // A policy that does not parse: refused each time (never cached as anything).
        var broken = loose
        broken.attributes.releasePolicy = Array(#"{"version":"1.0.0","anyOf":[]"#.utf8)
        for _ in 0..<2 {
            let answer = release(broken)
            #expect(answer.value == nil)
            #expect(answer.refusal?.code == Code.keyBlobInvalid)
        }
        // The token that was just released to: expired an hour later.
        let late = release(loose, now: Date().addingTimeInterval(3600))
        #expect(late.value == nil)
        #expect(late.refusal?.code == Code.tokenExpired)
        // Another token for another issuer's URL spelling is still checked in full.
        var claims = authority.claims(keys: [TestKeys.jwk(WrapJWK(p256: target.publicKey))])
        claims["iss"] = .string("https://untrusted.example")
        let other = broker.release(BrokerReleaseRequest(key: loose, target: try authority.token(claims)), now: Date())
        #expect(other.refusal?.code == Code.untrustedIssuer)
    }

    @Test func thePolicyCacheIsBounded() throws {
        let cache = PolicyCache()
        for index in 0..<(PolicyCache.capacity + 5) {
            let policy = TestKeys.policy(minimumSVN: index)
            #expect(cache.policy(policy) != nil)
            #expect(cache.policy(policy) == (try ReleasePolicy(jsonBytes: Data(policy))))
        }
        #expect(cache.count <= PolicyCache.capacity)
        #expect(cache.policy(Array("{}".utf8)) == nil)
    }

    @Test func theAuditRecordIsUnchanged() throws {
        let authority = TestAuthority.shared
        let target = P256.KeyAgreement.PrivateKey()
        let claims = authority.claims(keys: [TestKeys.jwk(WrapJWK(p256: target.publicKey))], svn: 7)
        let response = KeyReleaseTests.broker.release(
            BrokerReleaseRequest(key: try KeyReleaseTests.importedKey(), target: try authority.token(claims)),
            now: Date()
        )
        #expect(response.value != nil)
        #expect(response.audit == KeyBroker.audit(claims, verified: true))
        #expect(response.audit.claims["x-ms-sgx-svn"] == "7")
        #expect(response.audit.claims["x-ms-sgx-product-id"] == "1")
        // A malformed token (a claim named twice) is refused, its claims still audited as JSONDecoder reads them.
        let header = TestAuthority.encode(["alg": .string("RS256"), "kid": .string(authority.kid)])
        let payload = Base64URL.encode(Array(#"{"iss":"https://a.example","jti":"j1","jti":"j2"}"#.utf8))
        let malformed = KeyReleaseTests.broker.release(
            BrokerReleaseRequest(key: try KeyReleaseTests.importedKey(), target: header + "." + payload + ".AA"),
            now: Date()
        )
        #expect(malformed.refusal?.code == Code.malformedToken)
        #expect(malformed.audit.tokenID == "j1")
        #expect(!malformed.audit.verified)
    }
}
