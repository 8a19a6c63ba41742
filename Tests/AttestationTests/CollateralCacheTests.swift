import EnclaveCore
import Foundation
import TestSupport
import Testing
import X509

@testable import Attestation

/// The caches of the bundle path: parsed collateral bundles (``CollateralCache``, by the bundle's exact bytes) and
/// parsed issuing certificates (``CertificateCache``, by their exact DER bytes). Each gives back only what parsing
/// the same bytes gives: a bundle or certificate that differs in one byte misses and is parsed, and what it says is
/// then checked (and refused) as if no cache existed.
@Suite("Collateral and certificate caches")
struct CollateralCacheTests {
    static func bundle() throws -> [UInt8] { try Vectors.bytes(CollateralTests.collateralPath) }

    /// The bundle with the first `old` in the raw text of the JSON string `field` replaced by `new` (escaped as the
    /// bundle escapes it): the bundle stays valid JSON, only that field's value changes.
    static func bundle(_ field: String, replacing old: String, with new: String) throws -> [UInt8] {
        let original = try bundle()
        let text = String(decoding: original, as: UTF8.self)
        let key = try #require(text.range(of: "\"\(field)\": \"") ?? text.range(of: "\"\(field)\":\""))
        let value = try #require(text.range(of: old, range: key.upperBound..<Self.end(of: key, in: text)))
        var changed = text
        changed.replaceSubrange(value, with: new)
        let bytes = Array(changed.utf8)
        #expect(bytes != original)
        return bytes
    }

    /// The bundle with the last hexadecimal digit but two of `field` changed.
    static func bundle(flippingHexOf field: String) throws -> [UInt8] {
        let original = try bundle()
        let text = String(decoding: original, as: UTF8.self)
        let key = try #require(text.range(of: "\"\(field)\": \"") ?? text.range(of: "\"\(field)\":\""))
        var bytes = original
        let offset = text.utf8.distance(from: text.startIndex, to: Self.end(of: key, in: text)) - 3
        bytes[offset] = bytes[offset] == UInt8(ascii: "a") ? UInt8(ascii: "b") : UInt8(ascii: "a")
        #expect(bytes != original)
        return bytes
    }

    /// Where the JSON string whose opening quote ends `key` closes (escapes skipped).
    static func end(of key: Range<String.Index>, in text: String) -> String.Index {
        var index = key.upperBound
        while index < text.endIndex {
            if text[index] == "\\" {
                index = text.index(index, offsetBy: 2, limitedBy: text.endIndex) ?? text.endIndex
                continue
            }
            if text[index] == "\"" { return index }
            index = text.index(after: index)
        }
        return index
    }

    static func failedCheck(_ bundle: [UInt8], cache: CollateralCache) async throws -> AttestationError.Code? {
        await ParsedCollateralTests.failedCheck(try Collateral(dcapQVLJSON: bundle, cache: cache))
    }

    @Test func theSameBytesAreParsedOnce() async throws {
        let cache = CollateralCache()
        let first = try Collateral(dcapQVLJSON: Self.bundle(), cache: cache)
        let second = try Collateral(dcapQVLJSON: Self.bundle(), cache: cache)
        #expect(cache.misses == 1 && cache.hits == 1 && cache.count == 1)
        // The kept object, parsed CRLs, TCB info and QE identity included.
        #expect(first.parsed === second.parsed)
        #expect(second.tcbInfoBytes == first.tcbInfoBytes && second.pckCRL == first.pckCRL)
        let claims = try await ParsedCollateralTests.verify(second)
        #expect(claims.tcbStatus == .configurationAndSWHardeningNeeded)
        // Without a cache: parsed every time, the same collateral.
        let uncached = try Collateral(dcapQVLJSON: Self.bundle(), cache: nil)
        #expect(uncached.parsed !== first.parsed && uncached.tcbInfoBytes == first.tcbInfoBytes)
    }

    /// The original is cached (and verified) first; each copy one byte away misses the cache, is parsed and is
    /// refused by the check guarding that byte; the original still verifies from the cache afterwards.
    @Test func aChangedByteMissesTheCacheAndIsRefused() async throws {
        let cache = CollateralCache()
        #expect(try await Self.failedCheck(Self.bundle(), cache: cache) == nil)
        let changes: [(what: String, bytes: [UInt8], check: AttestationError.Code)] = [
            (
                "TCB info's evaluation number",
                try Self.bundle(
                    "tcb_info",
                    replacing: #"\"tcbEvaluationDataNumber\":17"#,
                    with: #"\"tcbEvaluationDataNumber\":18"#
                ),
                .tcbInfoSignature
            ),
            (
                "a TCB level's status",
                try Self.bundle(
                    "tcb_info",
                    replacing: #"\"tcbStatus\":\"OutOfDate\""#,
                    with: #"\"tcbStatus\":\"UpToDate\""#
                ),
                .tcbInfoSignature
            ),
            (
                "the QE's product ID",
                try Self.bundle("qe_identity", replacing: #"\"isvprodid\":1"#, with: #"\"isvprodid\":2"#),
                .qeIdentitySignature
            ),
            ("the TCB info signature", try Self.bundle(flippingHexOf: "tcb_info_signature"), .tcbInfoSignature),
            (
                "the QE identity signature", try Self.bundle(flippingHexOf: "qe_identity_signature"),
                .qeIdentitySignature
            ),
            ("the PCK CRL", try Self.bundle(flippingHexOf: "pck_crl"), .crl),
            ("the root CA CRL", try Self.bundle(flippingHexOf: "root_ca_crl"), .crl),
        ]
        for (index, change) in changes.enumerated() {
            let check = try? await Self.failedCheck(change.bytes, cache: cache)
            #expect(check == change.check, "\(change.what): \(String(describing: check))")
            #expect(cache.misses == index + 2, "\(change.what) was not parsed anew")
        }
        let hits = cache.hits
        #expect(try await Self.failedCheck(Self.bundle(), cache: cache) == nil)
        #expect(cache.hits == hits + 1)
    }

    /// A refused bundle is not kept; the cache holds at most its capacity, dropping the oldest.
    @Test func theCacheIsBoundedAndKeepsNoFailures() throws {
        let cache = CollateralCache(capacity: 2)
        #expect(throws: EnclaveError.self) { try Collateral(dcapQVLJSON: Array("{}".utf8), cache: cache) }
        #expect(cache.count == 0)
        let original = try Self.bundle()
        // Trailing whitespace: other bytes, the same collateral.
        let variants = (0..<3).map { original + Array(repeating: UInt8(ascii: " "), count: $0) }
        for variant in variants { _ = try Collateral(dcapQVLJSON: variant, cache: cache) }
        #expect(cache.count == 2 && cache.misses == 4 && cache.hits == 0)
        _ = try Collateral(dcapQVLJSON: variants[2], cache: cache)
        #expect(cache.hits == 1)
        _ = try Collateral(dcapQVLJSON: variants[0], cache: cache)  // dropped: the oldest
        #expect(cache.misses == 5)
        cache.removeAll()
        #expect(cache.count == 0)
    }

    /// Issuing certificates are shared by their exact DER bytes; one byte away is another certificate, parsed.
    @Test func certificatesAreSharedForIdenticalBytesOnly() throws {
        let cache = CertificateCache()
        let collateral = try Collateral(dcapQVLJSON: Self.bundle(), cache: nil)
        let pckCA = try #require(collateral.pckCRLIssuerChain.first)
        let der = try pckCA.serializeAsPEM().derBytes
        let first = try cache.certificate(der: der)
        let second = try cache.certificate(der: der)
        #expect(first == pckCA && second == pckCA && cache.hits == 1 && cache.misses == 1)
        // A byte of the signature changed: still a certificate, but not the cached one.
        var changed = der
        changed[changed.count - 5] ^= 1
        let other = try cache.certificate(der: changed)
        #expect(other != pckCA && cache.misses == 2)
        #expect(try Certificate(derEncoded: changed) == other)
        // Full capacity empties the cache before the next certificate.
        let small = CertificateCache(capacity: 1)
        _ = try small.certificate(der: der)
        _ = try small.certificate(der: changed)
        _ = try small.certificate(der: der)
        #expect(small.misses == 3 && small.hits == 0)
    }

    /// A quote's own PCK certificate is parsed on every verification, never taken from the shared cache: only the
    /// issuers that follow it are.
    @Test func aQuotesLeafIsNotShared() throws {
        let quote = try DCAPQuote(bytes: Vectors.bytes(CollateralTests.quotePath))
        var known = KnownCertificates()
        let chain = try quote.pckChain(reusing: &known)
        let leaf = try chain[0].serializeAsPEM().derBytes
        let issuer = try chain[1].serializeAsPEM().derBytes
        #expect(CertificateCache.shared.contains(der: issuer))
        #expect(!CertificateCache.shared.contains(der: leaf))
    }
}
