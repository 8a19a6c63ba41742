import EnclaveCore
import Foundation
import TestSupport
import Testing

@testable import Attestation

/// A collateral object parses its CRLs, TCB info and QE identity once and reuses them across quotes; what it keeps
/// is keyed on the exact bytes, so tampering with a reused object is caught as on a fresh one.
@Suite("Parsed-once collateral")
struct ParsedCollateralTests {
    static let anchors = [DCAPQuote.TrustAnchor(certificate: IntelRoots.sgxRootCA, simulated: false)]

    static func collateral() throws -> Collateral {
        try Collateral(dcapQVLJSON: Vectors.bytes(CollateralTests.collateralPath))
    }

    static func verify(_ collateral: Collateral) async throws -> Claims {
        let quote = try DCAPQuote(bytes: Vectors.bytes(CollateralTests.quotePath))
        return try await quote.verify(anchors: anchors, collateral: collateral, at: CollateralTests.time)
    }

    /// The failed check of verifying with `collateral`, or `nil` when it verified.
    static func failedCheck(_ collateral: Collateral) async -> AttestationError.Code? {
        do {
            _ = try await verify(collateral)
            return nil
        } catch let failure as AttestationError {
            return failure.check
        } catch {
            Issue.record("not an AttestationError: \(error)")
            return nil
        }
    }

    @Test func reusedObjectVerifiesLikeAFreshOne() async throws {
        let collateral = try Self.collateral()
        let first = try await Self.verify(collateral)
        let second = try await Self.verify(collateral)
        #expect(first.tcbStatus == .configurationAndSWHardeningNeeded)
        #expect(second.tcbStatus == first.tcbStatus && second.advisoryIDs == first.advisoryIDs)
    }

    /// The object has parsed everything before each tampered copy is made: the copy's CRL, TCB info and QE identity
    /// are caught, and the original still verifies afterwards.
    @Test func tamperedCopiesOfAParsedObjectFail() async throws {
        let collateral = try Self.collateral()
        _ = try await Self.verify(collateral)

        var crl = collateral
        crl.pckCRL[crl.pckCRL.count - 5] ^= 1
        #expect(await Self.failedCheck(crl) == .crl)

        var rootCRL = collateral
        rootCRL.rootCACRL[rootCRL.rootCACRL.count - 5] ^= 1
        #expect(await Self.failedCheck(rootCRL) == .crl)

        var swapped = collateral
        swapped.pckCRL = collateral.rootCACRL
        #expect(await Self.failedCheck(swapped) == .crl)

        var tcb = collateral
        let text = String(decoding: tcb.tcbInfoBytes, as: UTF8.self)
        tcb.tcbInfoBytes = Array(
            text.replacingOccurrences(of: "\"tcbStatus\":\"OutOfDate\"", with: "\"tcbStatus\":\"UpToDate\"").utf8
        )
        #expect(tcb.tcbInfoBytes != collateral.tcbInfoBytes)
        #expect(await Self.failedCheck(tcb) == .tcbInfoSignature)

        var qe = collateral
        qe.qeIdentityBytes[qe.qeIdentityBytes.count / 2] ^= 1
        #expect(await Self.failedCheck(qe) == .qeIdentitySignature)

        #expect(await Self.failedCheck(collateral) == nil)
    }

    /// The kept parses are looked up by bytes, not by the object holding them: one store asked for other bytes
    /// (here sharing the same storage, as copies of a collateral object would) parses those, and the first bytes
    /// again give their own parse back.
    @Test func keptParsesAreKeyedOnBytes() throws {
        let collateral = try Self.collateral()
        let parsed = ParsedCollateral()
        let crl = try parsed.crl(collateral.pckCRL)
        var other = collateral.pckCRL
        other[other.count - 5] ^= 1
        let otherCRL = try parsed.crl(other)
        #expect(otherCRL.signature != crl.signature)
        #expect(try parsed.crl(collateral.pckCRL).signature == crl.signature)
        #expect(try parsed.crl(collateral.rootCACRL).issuer != crl.issuer)
        #expect(try parsed.crl(other).signature == otherCRL.signature)

        let tcbInfo = try parsed.tcbInfo(collateral.tcbInfoBytes)
        let text = String(decoding: collateral.tcbInfoBytes, as: UTF8.self)
        let upgraded = try parsed.tcbInfo(
            Array(text.replacingOccurrences(of: "\"tcbStatus\":\"OutOfDate\"", with: "\"tcbStatus\":\"UpToDate\"").utf8)
        )
        #expect(upgraded.levels.map(\.status) != tcbInfo.levels.map(\.status))
        #expect(try parsed.tcbInfo(collateral.tcbInfoBytes).levels.map(\.status) == tcbInfo.levels.map(\.status))

        // Bad bytes are an error every time, never a kept value.
        for _ in 0..<2 {
            #expect(throws: EnclaveError.malformedInput("")) { try parsed.crl(Array(collateral.pckCRL.prefix(20))) }
            #expect(throws: EnclaveError.malformedInput("")) {
                try parsed.tcbInfo(Array(collateral.tcbInfoBytes.dropLast()))
            }
        }
    }

    /// The bundle reader keeps exactly the bundle's bytes: hexadecimal fields decoded, JSON strings unescaped.
    @Test func bundleFieldsAreTheBundlesBytes() throws {
        let bytes = try Vectors.bytes(CollateralTests.collateralPath)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        let collateral = try Collateral(dcapQVLJSON: bytes)
        let tcbInfo = try #require(object["tcb_info"] as? String)
        let qeIdentity = try #require(object["qe_identity"] as? String)
        #expect(collateral.tcbInfoBytes == Array(tcbInfo.utf8))
        #expect(collateral.qeIdentityBytes == Array(qeIdentity.utf8))
        #expect(Hex.encode(collateral.pckCRL) == (object["pck_crl"] as? String)?.lowercased())
        #expect(Hex.encode(collateral.rootCACRL) == (object["root_ca_crl"] as? String)?.lowercased())
        #expect(collateral.tcbInfoIssuerChain.count == 2 && collateral.qeIdentityIssuerChain.count == 2)
        #expect(collateral.pckCRLIssuerChain.count == 2)
    }
}
