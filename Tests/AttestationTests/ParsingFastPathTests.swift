import EnclaveCore
import Foundation
import SwiftASN1
import TestSupport
import Testing
import X509

@testable import Attestation

/// The fast paths of uncached verification give what the general code gives: dates by arithmetic as `Calendar` and
/// Foundation's ISO 8601 reader compute them, JSON strings checked without being decoded as decoding judges them,
/// and certificates reused by their exact DER bytes only.
@Suite("Verification fast paths")
struct ParsingFastPathTests {
    @Test func arithmeticDatesEqualCalendarDates() throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = try #require(TimeZone(identifier: "UTC"))
        var generator = SystemRandomNumberGenerator()
        var checked = 0
        for _ in 0..<2_000 {
            // From 1583: before the Gregorian reform Foundation's calendar is Julian; the arithmetic stays proleptic
            // Gregorian there (as X.509's times and swift-certificates' own dates are).
            let year = Int.random(in: 1583..<10_000, using: &generator)
            let month = Int.random(in: 1...12, using: &generator)
            let day = Int.random(in: 1...UTCDate.daysInMonth(month, year: year), using: &generator)
            let (hour, minute, second) = (Int.random(in: 0..<24), Int.random(in: 0..<60), Int.random(in: 0...61))
            let components = DateComponents(
                timeZone: calendar.timeZone,
                year: year,
                month: month,
                day: day,
                hour: hour,
                minute: minute,
                second: second
            )
            let expected = try #require(calendar.date(from: components))
            let date = UTCDate.date(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
            #expect(date == expected, "\(components)")
            checked += 1
        }
        #expect(checked == 2_000)
        // Leap days, both century rules.
        for (year, days) in [(2000, 29), (1900, 28), (2024, 29), (2023, 28), (2100, 28), (2400, 29)] {
            #expect(UTCDate.daysInMonth(2, year: year) == days, "\(year)")
        }
    }

    @Test func intelTimestampsReadAsFoundationReadsThem() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let date = Date(timeIntervalSince1970: TimeInterval(Int64.random(in: 0..<4_102_444_800, using: &generator)))
            let text = date.formatted(.iso8601)
            #expect(text.utf8.count == 20)
            #expect(UTCDate.intelTimestamp(text) == date, "\(text)")
            #expect(Collateral.parseDate(text) == (try? Date(text, strategy: .iso8601)))
        }
        // Anything else is Foundation's to judge (and an impossible day is never accepted by the fast path).
        for text in [
            "2025-02-29T00:00:00Z", "2025-13-01T00:00:00Z", "2025-06-19T24:00:00Z", "2025-06-19T10:56:11+00:00",
            "2025-06-19T10:56:11.5Z", "2025-06-19 10:56:11Z", "２025-06-19T10:56:11Z", "2025-06-19T10:56:11z", "",
        ] {
            #expect(UTCDate.intelTimestamp(text) == nil, "\(text)")
            #expect(Collateral.parseDate(text) == (try? Date(text, strategy: .iso8601)), "\(text)")
        }
    }

    @Test func crlTimesEqualCalendarTimes() throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = try #require(TimeZone(identifier: "UTC"))
        for (year, month, day, hour, minute, second) in [
            (2049, 12, 31, 23, 59, 59), (1950, 1, 1, 0, 0, 0), (2024, 2, 29, 12, 30, 1), (2025, 7, 19, 10, 23, 18),
        ] {
            let expected = try #require(
                calendar.date(
                    from: DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
                )
            )
            let utc = try UTCTime(year: year, month: month, day: day, hours: hour, minutes: minute, seconds: second)
            var serializer = DER.Serializer()
            try serializer.serialize(utc)
            #expect(try DERTime.date(DER.parse(serializer.serializedBytes)) == expected)
            let generalized = try GeneralizedTime(
                year: year,
                month: month,
                day: day,
                hours: hour,
                minutes: minute,
                seconds: second,
                fractionalSeconds: 0
            )
            serializer = DER.Serializer()
            try serializer.serialize(generalized)
            #expect(try DERTime.date(DER.parse(serializer.serializedBytes)) == expected)
        }
    }

    /// Strings whose well-formedness the parser now checks without decoding: the verdict is decoding's.
    @Test func jsonStringsAreJudgedAsDecodingJudgesThem() throws {
        let cases: [(String, String?)] = [
            (#""plain""#, "plain"),
            (#""a\"b\\c\/d\b\f\n\r\t""#, "a\"b\\c/d\u{8}\u{C}\n\r\t"),
            (#""\u00e9\u20AC\ud83d\ude00""#, "é€😀"),
            (
                #""-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n""#,
                "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"
            ),
            (#""\x""#, nil), (#""\u12""#, nil), (#""\u12G4""#, nil), (#""\ud83d""#, nil), (#""\ud83dx""#, nil),
            (#""\ude00""#, nil), (#""\ud83d\u0041""#, nil), (#""é\q""#, nil),
        ]
        for (json, expected) in cases {
            let document = Array("{\"k\":\(json)}".utf8)
            if let expected {
                let fields = try JSONFields(bytes: document, what: "test")
                #expect(try fields.string("k") == expected, "\(json)")
                let foundation = try JSONSerialization.jsonObject(with: Data(document)) as? [String: String]
                #expect(foundation?["k"] == expected, "\(json)")
            } else {
                expectEnclaveError(.malformedInput, "\(json)") { try JSONFields(bytes: document, what: "test") }
            }
        }
        // Control characters and unterminated strings are refused as before.
        expectEnclaveError(.malformedInput) { try JSONValue(parsing: Array("\"a\u{1}b\"".utf8)) }
        expectEnclaveError(.malformedInput) { try JSONValue(parsing: Array("\"abc".utf8)) }
        expectEnclaveError(.malformedInput) { try JSONValue(parsing: Array("\"abc\\\"".utf8)) }
    }

    @Test func jsonIntegersReadWithoutStrings() throws {
        for (text, expected) in [
            ("0", JSONValue.integer(0)), ("-0", .integer(0)), ("17", .integer(17)), ("-42", .integer(-42)),
            ("999999999999999", .integer(999_999_999_999_999)), ("-99999999999999", .integer(-99_999_999_999_999)),
            ("9007199254740992", .integer(9_007_199_254_740_992)),
            ("9007199254740993", .double(Double("9007199254740993")!)),
            ("1.5", .double(1.5)), ("1e3", .double(1000)),
        ] {
            #expect(try JSONValue(parsing: Array(text.utf8)) == expected, "\(text)")
        }
        for text in ["01", "-", "1.", "--1", "1e", "+1"] {
            expectEnclaveError(.malformedInput, "\(text)") { try JSONValue(parsing: Array(text.utf8)) }
        }
    }

    /// A certificate is reused only for the exact bytes it was parsed from.
    @Test func knownCertificatesAreReusedForIdenticalBytesOnly() throws {
        var known = KnownCertificates.intelRoot
        #expect(known[IntelRoots.sgxRootCADER] == IntelRoots.sgxRootCA)
        var changed = IntelRoots.sgxRootCADER
        changed[changed.count - 3] ^= 1
        #expect(known[changed] == nil)
        #expect(known[Array(IntelRoots.sgxRootCADER.dropLast())] == nil)
        let chain = try DCAPQuote(bytes: Vectors.bytes(Vectors.quotes[0])).pckChain(reusing: &known)
        #expect(chain.count == 3 && chain.last == IntelRoots.sgxRootCA)
        // The leaf and the PCK CA were parsed and are now known by their bytes.
        for certificate in chain {
            let der = try certificate.serializeAsPEM().derBytes
            #expect(known[der] == certificate)
        }
        // The collateral's chains, parsed with the same memory, give the same certificates as a fresh parse.
        let collateral = try Collateral(dcapQVLJSON: Vectors.bytes(CollateralTests.collateralPath))
        for issuerChain in [
            collateral.tcbInfoIssuerChain, collateral.qeIdentityIssuerChain, collateral.pckCRLIssuerChain,
        ] {
            for certificate in issuerChain {
                let der = try certificate.serializeAsPEM().derBytes
                #expect(try Certificate(derEncoded: der) == certificate)
                #expect(collateral.knownCertificates[der] == certificate)
            }
        }
    }

    /// The quote's PCK CA and root copy are the bytes the collateral already holds: changed in the quote, they are
    /// parsed anew (not taken from the collateral) and the chain fails.
    @Test func aChangedCopyOfAKnownCertificateInTheQuoteFailsTheChain() async throws {
        let original = try Vectors.bytes(CollateralTests.quotePath)
        let pem = try DCAPQuote(bytes: original).certification.data
        let start = original.count - pem.count
        let text = String(decoding: pem, as: UTF8.self)
        let begins = text.ranges(of: "-----BEGIN CERTIFICATE-----\n")
        #expect(begins.count == 3)
        for (index, begin) in begins.enumerated().dropFirst() {
            let offset = text.utf8.distance(from: text.startIndex, to: begin.upperBound) + 300
            var bytes = original
            bytes[start + offset] = bytes[start + offset] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            let quote = try DCAPQuote(bytes: bytes)
            let failure = await #expect(throws: AttestationError.self, "certificate \(index)") {
                try await quote.verify(
                    anchors: ParsedCollateralTests.anchors,
                    collateral: ParsedCollateralTests.collateral(),
                    at: CollateralTests.time
                )
            }
            #expect(
                failure?.check == .pckChain || failure?.check == .crl,
                "certificate \(index): \(String(describing: failure))"
            )
        }
    }
}
