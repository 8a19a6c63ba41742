import Attestation
import EnclaveHost
import Foundation
import TestInterface
import Testing
import X509

@Suite("Simulated remote evidence")
struct EvidenceTests {
    @Test func simulatedQuoteVerifiesToTheEnclavesIdentity() async throws {
        let signed = try Fixtures.sign(config: EnclaveConfig(productID: 12, securityVersion: 3))
        let options = Fixtures.options(signed)
        let platform = try #require(options.platform)
        let enclave = try await Enclave.load(path: signed.image, options: options)
        let reportData = Array(0..<64).map(UInt8.init)
        let evidence = try await enclave.call(Evidence.self, reportData).bytes
        await enclave.terminate()

        let quote = try DCAPQuote(bytes: evidence)
        let root = try Certificate(pemEncoded: platform.rootCertificatePEM())
        let claims = try await quote.verify(anchors: [.init(certificate: root, simulated: true)], at: Date())
        #expect(claims.format == "sgx")
        #expect(claims.sgx?.mrEnclave == signed.identity.uniqueID)
        #expect(claims.sgx?.mrSigner == signed.identity.signerID)
        #expect(claims.sgx?.isvProductID == 12)
        #expect(claims.sgx?.isvSVN == 3)
        #expect(!claims.debug)
        #expect(claims.simulated)
        #expect(claims.reportData == reportData)

        // The PCK certificate carries the SGX extension, as Intel's do.
        let leaf = try #require(try quote.pckChain().first)
        let value = try #require(leaf.extensions.first { $0.oid == [1, 2, 840, 113_741, 1, 13, 1] }?.value)
        let sgx = try SGXExtensions(derEncoded: value)
        #expect(sgx.cpuSVN == quote.sgxReport?.cpuSVN)
        #expect(sgx.pceSVN == Int(quote.header.pceSVN))

        // Another platform's root is not this quote's anchor.
        let other = try SimulatedPlatform.open(directory: Fixtures.temporaryDirectory())
        let otherRoot = try Certificate(pemEncoded: other.rootCertificatePEM())
        let failure = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await quote.verify(anchors: [.init(certificate: otherRoot, simulated: true)], at: Date())
        }
        #expect(failure?.check == .pckChain)
    }

    @Test func debugEnclavesSaySo() async throws {
        let signed = try Fixtures.sign(config: EnclaveConfig(productID: 1, securityVersion: 1, debug: true))
        let options = Fixtures.options(signed, debug: true)
        let enclave = try await Enclave.load(path: signed.image, options: options)
        let quote = try DCAPQuote(bytes: try await enclave.call(Evidence.self, [1]).bytes)
        await enclave.terminate()
        #expect(quote.sgxReport?.isDebug == true)
        #expect(quote.sgxReport?.reportData == [1] + [UInt8](repeating: 0, count: 63))
    }
}

@Suite("Simulated collateral and TCB status", .serialized)
struct SimulatedCollateralTests {
    let platform: SimulatedPlatform
    let evidence: [UInt8]

    init() async throws {
        platform = try SimulatedPlatform.open(directory: Fixtures.temporaryDirectory() + "/platform")
        let signed = try Fixtures.sign()
        var options = Fixtures.options(signed)
        options.platform = platform
        let enclave = try await Enclave.load(path: signed.image, options: options)
        evidence = try await enclave.call(Evidence.self, [7]).bytes
        await enclave.terminate()
    }

    func verify(at time: Date = Date(), collateralIssued: Date = Date()) async throws -> Claims {
        let root = try Certificate(pemEncoded: platform.rootCertificatePEM())
        let collateral = try Collateral(dcapQVLJSON: platform.collateralJSON(issued: collateralIssued))
        return try await DCAPQuote(bytes: evidence).verify(
            anchors: [.init(certificate: root, simulated: true)],
            collateral: collateral,
            at: time
        )
    }

    @Test func upToDateOutOfDateAndRevoked() async throws {
        let current = try await verify()
        #expect(current.tcbStatus == .upToDate)
        #expect(current.advisoryIDs.isEmpty)
        #expect(current.simulated)

        // Intel publishes a newer TCB: the platform falls to the older level.
        let info = try platform.platformInfo()
        var newer = info.cpuSVN.map(Int.init)
        newer[0] += 1
        try platform.setTCB(upToDateComponents: newer)
        let stale = try await verify()
        #expect(stale.tcbStatus == .outOfDate)
        #expect(stale.advisoryIDs == [SimulatedPlatform.simulatedAdvisory])

        // Newer still, by two: below every level.
        newer[0] += 1
        try platform.setTCB(upToDateComponents: newer)
        let none = await #expect(throws: DCAPQuote.VerificationFailure.self) { try await verify() }
        #expect(none?.check == .tcbLevel)

        try platform.setTCB(upToDateComponents: info.cpuSVN.map(Int.init), revokePCK: true)
        let revoked = await #expect(throws: DCAPQuote.VerificationFailure.self) { try await verify() }
        #expect(revoked?.check == .revocation)
        try platform.setTCB(revokePCK: false)
        #expect(try await verify().tcbStatus == .upToDate)

        // The platform itself at a lower CPUSVN (a new PCK certificate, a new quote): out of date again.
        var lower = info.cpuSVN
        lower[0] -= 1
        try platform.setTCB(cpuSVN: lower)
        #expect(try platform.platformInfo().cpuSVN == lower)
        let signed = try Fixtures.sign()
        var options = Fixtures.options(signed)
        options.platform = platform
        let enclave = try await Enclave.load(path: signed.image, options: options)
        let older = try await enclave.call(Evidence.self, [7]).bytes
        await enclave.terminate()
        let root = try Certificate(pemEncoded: platform.rootCertificatePEM())
        let downgraded = try await DCAPQuote(bytes: older).verify(
            anchors: [.init(certificate: root, simulated: true)],
            collateral: Collateral(dcapQVLJSON: platform.collateralJSON()),
            at: Date()
        )
        #expect(downgraded.tcbStatus == .outOfDate)
        #expect(try DCAPQuote(bytes: older).sgxReport?.cpuSVN == lower)
        try platform.setTCB(cpuSVN: info.cpuSVN)

    }

    @Test func collateralWindow() async throws {
        let issued = Date()
        _ = try await verify(at: issued, collateralIssued: issued)
        let early = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await verify(at: issued.addingTimeInterval(-2), collateralIssued: issued)
        }
        #expect(early?.check == .crl)  // the CRLs are checked first
        let late = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await verify(at: issued.addingTimeInterval(31 * 86400), collateralIssued: issued)
        }
        #expect(late?.check == .crl)
    }
}
