import Crypto
import EnclaveCore
import Foundation
import TestSupport
import Testing
import X509

@testable import Attestation

/// Certificate serials are integers: DER encodes one whose top bit is set with a leading `00` octet, swift-certificates
/// keeps it without. A CRL entry must revoke the certificate with that serial whichever way each side spells it.
@Suite("Revocation: serial numbers compared as integers")
struct RevocationTests {
    /// Real Intel PCK CRLs in the vectors, with how many entries each lists and how many of those carry a leading 00.
    static let intelPCKCRLs: [(path: String, key: String?, revoked: Int, leadingZero: Int)] = [
        ("tdx/google-go-tdx-guest/pckcrl", nil, 44, 24),
        ("tdx/phala-dcap-qvl/tdx_quote_collateral.json", "pck_crl", 44, 24),
        ("tdx/phala-dcap-qvl/tdx_quote_outdated_collateral.json", "pck_crl", 57, 28),
    ]

    static func crlBytes(_ path: String, key: String?) throws -> [UInt8] {
        let bytes = try Vectors.bytes(path)
        guard let key else { return bytes }
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        let hex = try #require(object[key] as? String)
        return try #require(Hex.decode(hex))
    }

    /// The raw content octets of each revoked entry's serial INTEGER, read with a minimal DER walk of our own (so
    /// the test does not share the parser it checks).
    static func rawSerials(_ der: [UInt8]) throws -> [[UInt8]] {
        func element(
            _ bytes: ArraySlice<UInt8>
        ) throws -> (tag: UInt8, content: ArraySlice<UInt8>, rest: ArraySlice<UInt8>) {
            var index = bytes.startIndex
            let tag = try #require(bytes.first)
            index += 1
            var length = Int(try #require(index < bytes.endIndex ? bytes[index] : nil))
            index += 1
            if length & 0x80 != 0 {
                let count = length & 0x7F
                length = 0
                for _ in 0..<count {
                    length = length << 8 | Int(try #require(index < bytes.endIndex ? bytes[index] : nil))
                    index += 1
                }
            }
            try #require(index + length <= bytes.endIndex)
            return (tag, bytes[index..<index + length], bytes[(index + length)...])
        }
        let tbs = try element(try element(der[...]).content).content
        var fields: [(UInt8, ArraySlice<UInt8>)] = []
        var rest = tbs
        while !rest.isEmpty {
            let next = try element(rest)
            fields.append((next.tag, next.content))
            rest = next.rest
        }
        // version, signature, issuer, thisUpdate, nextUpdate, then revokedCertificates (a SEQUENCE) if present.
        guard fields.count > 5, fields[5].0 == 0x30 else { return [] }
        var serials: [[UInt8]] = []
        var entries = fields[5].1
        while !entries.isEmpty {
            let entry = try element(entries)
            let serial = try element(entry.content)
            #expect(serial.tag == 0x02)
            serials.append(Array(serial.content))
            entries = entry.rest
        }
        return serials
    }

    /// A certificate with `serial` (its own key, self-signed: only the serial matters to `revokes`).
    static func certificate(serial: [UInt8]) throws -> Certificate {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("serial test") }
        return try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(bytes: serial),
            publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: Date(timeIntervalSince1970: 0),
            notValidAfter: Date(timeIntervalSince1970: 4_000_000_000),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: Certificate.Extensions(),
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
    }

    /// Every serial of Intel's real PCK CRLs revokes the certificate with that serial — about half of them are
    /// DER-encoded with a leading 00 (top bit set), which a byte comparison with swift-certificates' form misses.
    @Test(arguments: intelPCKCRLs.map { [$0.path, $0.key ?? ""] })
    func realIntelCRLRevokesEveryListedSerial(_ source: [String]) throws {
        let row = try #require(Self.intelPCKCRLs.first { $0.path == source[0] })
        let der = try Self.crlBytes(row.path, key: row.key)
        let crl = try CertificateRevocationList(bytes: der)
        let raw = try Self.rawSerials(der)
        #expect(raw.count == row.revoked)
        let leadingZero = raw.filter { $0.first == 0 }
        #expect(leadingZero.count == row.leadingZero)
        // Proper DER: a leading 00 only where the next octet has its top bit set.
        #expect(leadingZero.allSatisfy { $0.count > 1 && $0[1] >= 0x80 })
        #expect(crl.revokedSerials.count == row.revoked)
        var missed: [String] = []
        for serial in raw {
            let certificate = try Self.certificate(serial: serial)
            if !crl.revokes(certificate) { missed.append(Hex.encode(serial)) }
        }
        #expect(missed.isEmpty, "not revoked: \(missed)")
        // A serial the CRL does not list is not revoked (one bit changed in a listed one).
        var other = Array(raw[0])
        other[other.count - 1] ^= 1
        #expect(!crl.revokes(try Self.certificate(serial: other)))
    }

    /// Intel's PCK Processor CA has a serial with its top bit set (0xD0E8…): a root CA CRL listing it in proper DER
    /// revokes it. The CRL is built here (unsigned: `revokes` looks only at the list).
    @Test func processorCASerialWithTopBitSetIsRevoked() throws {
        let collateral = try Collateral(dcapQVLJSON: Vectors.bytes(CollateralTests.collateralPath))
        let processorCA = try #require(collateral.pckCRLIssuerChain.first)
        #expect(processorCA.subject.description.contains("Intel SGX PCK Processor CA"))
        let serial = Array(processorCA.serialNumber.bytes)
        #expect(serial[0] >= 0x80)  // swift-certificates keeps it without the DER sign octet
        let real = try CertificateRevocationList(bytes: collateral.rootCACRL)
        #expect(!real.revokes(processorCA))
        let listing = try Self.crlListing(serialContent: [0] + serial)
        #expect(try Self.rawSerials(listing) == [[0] + serial])
        #expect(try CertificateRevocationList(bytes: listing).revokes(processorCA))
    }

    /// A CRL encoded by another implementation (Python `cryptography`, on OpenSSL) listing 0x80C0FFEE…EE and 0xFF01
    /// (top bit set: DER `00`-prefixed) and 0x7FC0FFEE…EE (not): each revokes the certificate with that serial.
    static let pythonCRL =
        "308201013081a8020101300a06082a8648ce3d04030230143112301006035504030c09507974686f6e204341170d3235303130313030"
        + "303030305a170d3335303130313030303030305a3063302502140080c0ffee00112233445566778899aabbccddee170d323530313031"
        + "3030303030305a302402137fc0ffee00112233445566778899aabbccddee170d3235303130313030303030305a3014020300ff01170d"
        + "3235303130313030303030305a300a06082a8648ce3d04030203480030450221009eeafe595b25091720758035749716a1eee6e8515b"
        + "a861bce396c5cbef20d0b40220064e1b395f2f78d5c91048b5aecde22f852ed3380279c090c6c2ae2629aa3af1"

    @Test func crlFromAnotherEncoderRevokesTopBitSerials() throws {
        let der = try #require(Hex.decode(Self.pythonCRL))
        let crl = try CertificateRevocationList(bytes: der)
        let tail: [UInt8] = [
            0xC0, 0xFF, 0xEE, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE,
        ]
        #expect(try Self.rawSerials(der) == [[0x00, 0x80] + tail, [0x7F] + tail, [0x00, 0xFF, 0x01]])
        for serial in [[0x80] + tail, [0x7F] + tail, [0xFF, 0x01]] {
            #expect(crl.revokes(try Self.certificate(serial: serial)), "\(Hex.encode(serial))")
        }
        #expect(!crl.revokes(try Self.certificate(serial: [0x81] + tail)))
        #expect(!crl.revokes(try Self.certificate(serial: [0xFF, 0x02])))
        // Not DER: a redundant leading 00 (non-minimal) or a negative serial makes the whole CRL malformed, rather
        // than silently listing another number.
        var lax = der
        let index = try #require(lax.indices.first { lax[$0...].starts(with: [0x02, 0x13, 0x7F, 0xC0]) })
        lax.replaceSubrange(index..<index + 4, with: [0x02, 0x13, 0x00, 0x7F])
        expectEnclaveError(.malformedInput) { try CertificateRevocationList(bytes: lax) }
        var negative = der
        let high = try #require(negative.indices.first { negative[$0...].starts(with: [0x02, 0x14, 0x00, 0x80]) })
        negative[high + 2] = 0x80
        expectEnclaveError(.malformedInput) { try CertificateRevocationList(bytes: negative) }
    }

    /// A minimal DER CRL (v2, ECDSA-SHA256 OID, a fixed issuer, UTC times, one entry) with `serialContent` as the
    /// entry's INTEGER content octets, and a dummy signature.
    static func crlListing(serialContent: [UInt8]) throws -> [UInt8] {
        func tlv(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
            var length: [UInt8]
            if content.count < 0x80 {
                length = [UInt8(content.count)]
            } else if content.count < 0x100 {
                length = [0x81, UInt8(content.count)]
            } else {
                length = [0x82, UInt8(content.count >> 8), UInt8(content.count & 0xFF)]
            }
            return [tag] + length + content
        }
        let algorithm = tlv(0x30, tlv(0x06, [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02]))
        let issuer = tlv(0x30, tlv(0x31, tlv(0x30, tlv(0x06, [0x55, 0x04, 0x03]) + tlv(0x0C, Array("CA".utf8)))))
        let time = tlv(0x17, Array("250101000000Z".utf8))
        let later = tlv(0x17, Array("350101000000Z".utf8))
        let entry = tlv(0x30, tlv(0x02, serialContent) + time)
        let tbs = tlv(0x30, tlv(0x02, [1]) + algorithm + issuer + time + later + tlv(0x30, entry))
        let signature = tlv(0x03, [0] + tlv(0x30, tlv(0x02, [1]) + tlv(0x02, [1])))
        return tlv(0x30, tbs + algorithm + signature)
    }
}

/// The quoting enclave pinned on every DCAP quote is the one Intel's own QE identity documents name, and the real
/// quotes' quoting enclaves are it.
@Suite("Intel's quoting enclaves, pinned")
struct QuotingEnclavePinTests {
    @Test(arguments: [
        ("sgx/phala-dcap-qvl/sgx_quote_collateral.json", false),
        ("tdx/phala-dcap-qvl/tdx_quote_collateral.json", true),
        ("tdx/phala-dcap-qvl/tdx_quote_outdated_collateral.json", true),
        ("derived/collateral-dcapqvl-json/gotdxguest_tdx_2023_50806f000000.json", true),
    ])
    func pinsAreIntelsQEIdentities(_ path: String, _ tdx: Bool) throws {
        let identity = try QEIdentity(jsonBytes: Collateral(dcapQVLJSON: Vectors.bytes(path)).qeIdentityBytes)
        let pin = QuotingEnclaveIdentity.intel(tdx: tdx)
        #expect(identity.id == pin.id)
        #expect(identity.mrSigner == pin.mrSigner && identity.isvProductID == Int(pin.isvProductID))
        #expect(identity.miscSelect == pin.miscSelect && identity.miscSelectMask == pin.miscSelectMask)
        #expect(identity.attributes == pin.attributes && identity.attributesMask == pin.attributesMask)
    }

    @Test(arguments: Vectors.quotes + Vectors.tdxQuotes)
    func realQuotesComeFromIntelsQuotingEnclave(_ path: String) throws {
        let quote = try DCAPQuote(bytes: Vectors.bytes(path))
        try quote.checkPinnedQuotingEnclave()
    }

    /// Chain-only verification of a real quote: accepted, and its claims say that revocation and TCB were not
    /// checked. A debug quoting enclave (attributes under Intel's mask) is not Intel's.
    @Test func chainOnlyVerificationOfARealQuote() async throws {
        let quote = try DCAPQuote(bytes: Vectors.bytes(CollateralTests.quotePath))
        let claims = try await quote.verifyChainOnly(
            anchors: [.init(certificate: IntelRoots.sgxRootCA, simulated: false)],
            at: CollateralTests.time
        )
        #expect(claims.notChecked == ["revocation", "TCB"] && claims.tcbStatus == nil && !claims.simulated)
        #expect(claims.jsonObject["notChecked"] as? [String] == ["revocation", "TCB"])
        var debugBytes = quote.qeReport.bytes
        debugBytes[48] |= 0x02  // ATTRIBUTES.FLAGS.DEBUG
        let debug = try SGXReportBody(bytes: debugBytes)
        #expect(QuotingEnclaveIdentity.intelQE.mismatch(debug) != nil)
        #expect(QuotingEnclaveIdentity.intelQE.mismatch(quote.qeReport) == nil)
        #expect(QuotingEnclaveIdentity.intelTDQE.mismatch(quote.qeReport) != nil)  // the SGX QE is not the TD QE
    }
}
