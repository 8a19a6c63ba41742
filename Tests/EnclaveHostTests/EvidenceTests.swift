import Attestation
import Crypto
import EnclaveCore
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
        let claims = try await quote.verifyChainOnly(anchors: [.init(certificate: root, simulated: true)], at: Date())
        #expect(claims.notChecked == Claims.chainOnlyNotChecked)
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
            try await quote.verifyChainOnly(anchors: [.init(certificate: otherRoot, simulated: true)], at: Date())
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
        (platform, evidence) = try await Fixtures.evidenceOnFreshPlatform(reportData: [7])
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

/// Attacks on the verifier with a PKI whose keys the test holds (the simulated platform's): a stand-in root for
/// Intel's, a quoting enclave of one's own, collateral signed by the wrong certificate, a revoked PCK whose serial
/// has its top bit set.
@Suite("Verifier attacks with a stand-in PKI", .serialized)
struct StandInPKIAttackTests {
    let platform: SimulatedPlatform
    let evidence: [UInt8]

    init() async throws {
        (platform, evidence) = try await Fixtures.evidenceOnFreshPlatform(reportData: [9])
    }

    func pem(_ name: String) throws -> String {
        try String(contentsOfFile: platform.directory + "/pki/" + name, encoding: .utf8)
    }

    func key(_ name: String) throws -> P256.Signing.PrivateKey {
        try P256.Signing.PrivateKey(pemRepresentation: pem(name))
    }

    var root: Certificate { get throws { try Certificate(pemEncoded: pem("root-ca.pem")) } }

    /// The quote with its QE report's MRSIGNER replaced and the report re-signed with the PCK key: a quoting
    /// enclave of the attacker's own, certified by the (stand-in) PCK.
    func selfMadeQE() throws -> [UInt8] {
        var bytes = evidence
        let qe = 48 + 384 + 4 + 128  // version 3: header, body, signature length, signature and attestation key
        let signer = Array(SHA256.hash(data: Array("attacker's QE signer".utf8)))
        bytes.replaceSubrange(qe + 128..<qe + 160, with: signer)
        let signature = try key("pck.key.pem").signature(for: bytes[qe..<qe + 384]).rawRepresentation
        bytes.replaceSubrange(qe + 384..<qe + 448, with: Array(signature))
        return bytes
    }

    /// A quote from a self-made QE under a root standing in for Intel's (a hardware anchor): there is no verification
    /// without collateral but the explicit chain-only one, which pins Intel's QE and refuses it; with collateral (here
    /// the stand-in PKI's own, naming Intel's QE) it is refused too.
    @Test func selfMadeQuotingEnclaveUnderAStandInRootIsRefused() async throws {
        let anchors = [DCAPQuote.TrustAnchor(certificate: try root, simulated: false)]
        // Control: the platform's own quote (its QE has Intel's identity) verifies chain-only, and says what it skipped.
        let genuine = try await DCAPQuote(bytes: evidence).verifyChainOnly(anchors: anchors, at: Date())
        #expect(genuine.notChecked == ["revocation", "TCB"] && genuine.tcbStatus == nil)
        let quote = try DCAPQuote(bytes: selfMadeQE())
        let chainOnly = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await quote.verifyChainOnly(anchors: anchors, at: Date())
        }
        #expect(chainOnly?.check == .qeIdentity)
        #expect(chainOnly?.reason.contains("MRSIGNER") == true)
        let collateral = try Collateral(dcapQVLJSON: platform.collateralJSON(issued: Date().addingTimeInterval(-60)))
        let full = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await quote.verify(anchors: anchors, collateral: collateral, at: Date())
        }
        #expect(full?.check == .qeIdentity)
    }

    /// The QE identity check pins Intel's quoting enclave whoever signed the identity: a QE identity naming a
    /// self-made QE, signed by the (stand-in) TCB signing key, is refused.
    @Test func qeIdentityNamingAnotherQuotingEnclaveIsRefused() async throws {
        let bytes = try platform.collateralJSON(issued: Date().addingTimeInterval(-60))
        var bundle = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: String])
        let identity = try #require(bundle["qe_identity"])
        let signer = Hex.encode(Array(SHA256.hash(data: Array("attacker's QE signer".utf8)))).uppercased()
        let intel = Hex.encode(QuotingEnclaveIdentity.intelQE.mrSigner).uppercased()
        #expect(identity.contains(intel))
        let forged = identity.replacingOccurrences(of: intel, with: signer)
        bundle["qe_identity"] = forged
        let signature = try key("tcb-signing.key.pem").signature(for: Array(forged.utf8))
        bundle["qe_identity_signature"] = Hex.encode(Array(signature.rawRepresentation))
        let collateral = try Collateral(dcapQVLJSON: Array(try JSONSerialization.data(withJSONObject: bundle)))
        let failure = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await DCAPQuote(bytes: selfMadeQE()).verify(
                anchors: [.init(certificate: try root, simulated: true)],
                collateral: collateral,
                at: Date()
            )
        }
        #expect(failure?.check == .qeIdentity)
        #expect(failure?.reason.contains("does not name Intel's quoting enclave") == true)
    }

    /// The simulated collateral with its TCB info and QE identity signed by `key`, issued by `chain`.
    func collateral(signedBy key: P256.Signing.PrivateKey, chain: [String]) throws -> Collateral {
        let bytes = try platform.collateralJSON(issued: Date().addingTimeInterval(-60))
        var bundle = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: String])
        for (object, signature, issuer) in [
            ("tcb_info", "tcb_info_signature", "tcb_info_issuer_chain"),
            ("qe_identity", "qe_identity_signature", "qe_identity_issuer_chain"),
        ] {
            let signed = try key.signature(for: Array(try #require(bundle[object]).utf8))
            bundle[signature] = Hex.encode(Array(signed.rawRepresentation))
            bundle[issuer] = try chain.map { try pem($0) }.joined(separator: "\n")
        }
        return try Collateral(dcapQVLJSON: Array(try JSONSerialization.data(withJSONObject: bundle)))
    }

    /// TCB info and QE identity signed by a leaf under the root that is not the TCB signing certificate (here the
    /// PCK certificate): refused at the collateral signature.
    @Test func collateralSignedByANonTCBSigningLeafIsRefused() async throws {
        let anchors = [DCAPQuote.TrustAnchor(certificate: try root, simulated: true)]
        let quote = try DCAPQuote(bytes: evidence)
        // Control: the platform's own TCB signing certificate.
        let genuine = try collateral(signedBy: key("tcb-signing.key.pem"), chain: ["tcb-signing.pem", "root-ca.pem"])
        #expect(try await quote.verify(anchors: anchors, collateral: genuine, at: Date()).tcbStatus == .upToDate)
        let forged = try collateral(
            signedBy: key("pck.key.pem"),
            chain: ["pck.pem", "platform-ca.pem", "root-ca.pem"]
        )
        let failure = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await quote.verify(anchors: anchors, collateral: forged, at: Date())
        }
        #expect(failure?.check == .tcbInfoSignature)
        #expect(failure?.reason.contains("not issued directly by the root CA") == true)
        // The platform CA is issued by the root but is a CA, not the TCB Signing certificate.
        let byCA = try collateral(signedBy: key("platform-ca.key.pem"), chain: ["platform-ca.pem", "root-ca.pem"])
        let caFailure = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await quote.verify(anchors: anchors, collateral: byCA, at: Date())
        }
        #expect(caFailure?.check == .tcbInfoSignature)
        #expect(caFailure?.reason.contains("not Intel's TCB Signing certificate") == true)
        // The QE identity alone signed by another leaf is refused at its own check.
        var mixed = genuine
        let other = try collateral(signedBy: key("pck.key.pem"), chain: ["pck.pem", "platform-ca.pem", "root-ca.pem"])
        mixed.qeIdentitySignature = other.qeIdentitySignature
        mixed.qeIdentityIssuerChain = other.qeIdentityIssuerChain
        let qeFailure = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await quote.verify(anchors: anchors, collateral: mixed, at: Date())
        }
        #expect(qeFailure?.check == .qeIdentitySignature)
    }

    /// The root CA CRL revokes the TCB signing certificate and the platform CA (serials compared as integers).
    @Test func rootCRLRevokesTheTCBSigningCertificateAndThePlatformCA() async throws {
        let anchors = [DCAPQuote.TrustAnchor(certificate: try root, simulated: true)]
        let quote = try DCAPQuote(bytes: evidence)
        func verify() async throws -> Claims {
            try await quote.verify(
                anchors: anchors,
                collateral: Collateral(dcapQVLJSON: platform.collateralJSON(issued: Date().addingTimeInterval(-60))),
                at: Date()
            )
        }
        #expect(try await verify().tcbStatus == .upToDate)  // control
        try platform.setTCB(revokeTCBSigning: true)
        let signing = await #expect(throws: DCAPQuote.VerificationFailure.self) { try await verify() }
        #expect(signing?.check == .revocation)
        #expect(signing?.reason.contains("TCB Signing") == true)
        try platform.setTCB(revokePlatformCA: true, revokeTCBSigning: false)
        let platformCA = await #expect(throws: DCAPQuote.VerificationFailure.self) { try await verify() }
        #expect(platformCA?.check == .revocation)
        #expect(platformCA?.reason.contains("issuing CA") == true)
        try platform.setTCB(revokePlatformCA: false)
        #expect(try await verify().tcbStatus == .upToDate)
    }

    /// A PCK certificate whose serial has its top bit set: the simulated PCK CRL lists it in proper DER (with the
    /// leading 00), and the verifier revokes it.
    @Test func revokedPCKWithTopBitSerialIsRevoked() async throws {
        var serial: [UInt8] = []
        for _ in 0..<64 {
            serial = Array(try Certificate(pemEncoded: pem("pck.pem")).serialNumber.bytes)
            if serial.first.map({ $0 >= 0x80 }) == true { break }
            try platform.setTCB(cpuSVN: platform.platformInfo().cpuSVN)  // re-issues the PCK: a new serial
        }
        try #require(serial.first.map { $0 >= 0x80 } == true)
        try platform.setTCB(revokePCK: true)
        let bundle = try #require(
            try JSONSerialization.jsonObject(with: Data(platform.collateralJSON())) as? [String: String]
        )
        let crlHex = try #require(bundle["pck_crl"])
        let crl = try #require(Hex.decode(crlHex))
        let encoded: [UInt8] = [0x02, UInt8(serial.count + 1), 0x00] + serial
        #expect(crl.indices.contains { crl[$0...].starts(with: encoded) }, "the CRL does not list 00 ‖ serial")

        let signed = try Fixtures.sign()
        var options = Fixtures.options(signed)
        options.platform = platform
        let enclave = try await Enclave.load(path: signed.image, options: options)
        let quote = try DCAPQuote(bytes: try await enclave.call(Evidence.self, [3]).bytes)
        await enclave.terminate()
        let failure = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await quote.verify(
                anchors: [.init(certificate: try root, simulated: true)],
                collateral: Collateral(dcapQVLJSON: platform.collateralJSON()),
                at: Date()
            )
        }
        #expect(failure?.check == .revocation)
        try platform.setTCB(revokePCK: false)
    }
}
