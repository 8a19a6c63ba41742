import Attestation
import EnclaveCore
import EnclaveHost
import Foundation
import SwiftASN1
import Testing
import X509

/// What the simulated platform writes is accepted by verifiers other than ours, and is laid out as Intel's
/// counterparts in the vectors.
@Suite("Simulated artifacts")
struct SimulatedArtifactsTests {
    /// A private platform with one quote and its collateral, written to files.
    struct Artifacts {
        var directory: String
        var platform: SimulatedPlatform
        var quote: [UInt8]
        var collateral: [UInt8]
        var rootDER: [UInt8]
        var issued: Date

        init() throws {
            directory = try Fixtures.temporaryDirectory()
            platform = try SimulatedPlatform.open(directory: directory + "/platform")
            let identity = try Fixtures.standInIdentity()
            quote = try platform.quote(for: identity, reportData: Array(0..<64).map(UInt8.init))
            issued = Date().addingTimeInterval(-60)
            collateral = try platform.collateralJSON(issued: issued)
            var der = DER.Serializer()
            try der.serialize(try Certificate(pemEncoded: platform.rootCertificatePEM()))
            rootDER = der.serializedBytes
            try Data(quote).write(to: URL(fileURLWithPath: directory + "/quote.bin"))
            try Data(collateral).write(to: URL(fileURLWithPath: directory + "/collateral.json"))
            try Data(rootDER).write(to: URL(fileURLWithPath: directory + "/root.der"))
        }

        func crl(_ name: String) throws -> [UInt8] {
            try SimulatedArtifactsTests.hexField(name, of: collateral)
        }
    }

    /// Python 3 with the modules an independent check needs, or why not.
    static func python(_ modules: [String]) -> String? {
        let probe = modules.map { "import \($0)" }.joined(separator: "; ")
        guard let result = try? Fixtures.run("/usr/bin/env", ["python3", "-c", probe]) else {
            return "python3 could not be started"
        }
        return result.status == 0 ? nil : "python3 lacks \(modules.joined(separator: ", ")): \(result.output)"
    }

    static let dcapQVLMissing = python(["dcap_qvl"])
    static let cryptographyMissing = python(["cryptography"])

    /// Whether a missing independent verifier fails the test instead of skipping it (CI sets it).
    static var independentRequired: Bool {
        ProcessInfo.processInfo.environment["ENCLAVEKIT_REQUIRE_INDEPENDENT_VERIFIERS"] == "1"
    }

    /// dcap-qvl (Phala's Rust DCAP verifier, Python wheel) verifies a simulated quote with the simulated collateral
    /// bundle when the simulated root CA is its trust anchor: quote layout, PCK chain, CRLs (with the extensions
    /// RFC 5280 requires), TCB info and QE identity signatures and contents are acceptable to it.
    /// Needs `pip install dcap-qvl==0.7.0`; skipped, naming that, when it is missing, and failed instead when
    /// `ENCLAVEKIT_REQUIRE_INDEPENDENT_VERIFIERS=1`.
    @Test(
        .enabled(if: dcapQVLMissing == nil || independentRequired, "dcap-qvl missing: pip install dcap-qvl==0.7.0")
    )
    func dcapQVLVerifiesSimulatedQuoteAndCollateral() throws {
        if let missing = Self.dcapQVLMissing {
            Issue.record("ENCLAVEKIT_REQUIRE_INDEPENDENT_VERIFIERS=1 but \(missing)")
            return
        }
        let artifacts = try Artifacts()
        let script = """
            import sys, json, dcap_qvl
            quote = open(sys.argv[1], 'rb').read()
            collateral = dcap_qvl.QuoteCollateralV3.from_json(open(sys.argv[2]).read())
            root = open(sys.argv[3], 'rb').read()
            report = dcap_qvl.verify_with_root_ca(quote, collateral, root, int(sys.argv[4]))
            print(json.dumps({"status": report.status, "advisories": list(report.advisory_ids)}))
            """
        let now = String(Int(Date().timeIntervalSince1970))
        let directory = artifacts.directory
        let arguments = [
            "python3", "-c", script, directory + "/quote.bin", directory + "/collateral.json", directory + "/root.der",
        ]
        let result = try Fixtures.run("/usr/bin/env", arguments + [now])
        #expect(result.status == 0, "dcap-qvl refused the simulated evidence: \(result.output)")
        #expect(result.output.contains("\"status\": \"UpToDate\""), "\(result.output)")

        // The same check refuses the evidence under another root (Intel's), so it does check the anchor.
        let intel = Vectors.root + "/intel-pki/phala-dcap-qvl/TrustedRootCA.der"
        let foreign = try Fixtures.run(
            "/usr/bin/env",
            Array(arguments.dropLast()) + [intel, now]
        )
        #expect(foreign.status != 0, "\(foreign.output)")
        // And a tampered quote.
        var tampered = artifacts.quote
        tampered[48 + 64] ^= 1  // MRENCLAVE
        try Data(tampered).write(to: URL(fileURLWithPath: directory + "/tampered.bin"))
        var tamperedArguments = arguments
        tamperedArguments[3] = directory + "/tampered.bin"
        let refused = try Fixtures.run("/usr/bin/env", tamperedArguments + [now])
        #expect(refused.status != 0, "\(refused.output)")

        // dcap-qvl reads the simulated TCB levels and revocation lists: a newer up-to-date level makes the platform
        // OutOfDate with the simulated advisory; a PCK certificate on the PCK CRL is refused.
        var newer = try artifacts.platform.platformInfo().cpuSVN.map(Int.init)
        newer[0] += 1
        try artifacts.platform.setTCB(upToDateComponents: newer)
        try Data(artifacts.platform.collateralJSON(issued: artifacts.issued))
            .write(to: URL(fileURLWithPath: directory + "/collateral.json"))
        let outOfDate = try Fixtures.run("/usr/bin/env", arguments + [now])
        #expect(outOfDate.status == 0 && outOfDate.output.contains("\"status\": \"OutOfDate\""), "\(outOfDate.output)")
        #expect(outOfDate.output.contains(SimulatedPlatform.simulatedAdvisory), "\(outOfDate.output)")
        try artifacts.platform.setTCB(revokePCK: true)
        try Data(artifacts.platform.collateralJSON(issued: artifacts.issued))
            .write(to: URL(fileURLWithPath: directory + "/collateral.json"))
        let revoked = try Fixtures.run("/usr/bin/env", arguments + [now])
        #expect(revoked.status != 0 && revoked.output.lowercased().contains("revoked"), "\(revoked.output)")
        try artifacts.platform.setTCB(
            upToDateComponents: newer.enumerated().map { $0.offset == 0 ? $0.element - 1 : $0.element },
            revokePCK: false
        )
        try Data(artifacts.collateral).write(to: URL(fileURLWithPath: directory + "/collateral.json"))

        // What the simulated CRLs were before: the same CRL re-signed without extensions is refused by dcap-qvl
        // ("MalformedExtensions"), which is why they carry CRL Number and Authority Key Identifier.
        if Self.cryptographyMissing == nil {
            let bare = """
                import sys, json, dcap_qvl
                from cryptography import x509
                from cryptography.hazmat.primitives import hashes, serialization
                bundle = json.load(open(sys.argv[2]))
                crl = x509.load_der_x509_crl(bytes.fromhex(bundle['root_ca_crl']))
                key = serialization.load_pem_private_key(open(sys.argv[5], 'rb').read(), None)
                builder = x509.CertificateRevocationListBuilder().issuer_name(crl.issuer)
                builder = builder.last_update(crl.last_update_utc).next_update(crl.next_update_utc)
                bundle['root_ca_crl'] = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER).hex()
                collateral = dcap_qvl.QuoteCollateralV3.from_json(json.dumps(bundle))
                dcap_qvl.verify_with_root_ca(open(sys.argv[1], 'rb').read(), collateral, open(sys.argv[3], 'rb').read(), int(sys.argv[4]))
                """
            var bareArguments = arguments
            bareArguments[2] = bare
            let key = directory + "/platform/pki/root-ca.key.pem"
            let withoutExtensions = try Fixtures.run("/usr/bin/env", bareArguments + [now, key])
            #expect(withoutExtensions.status != 0, "\(withoutExtensions.output)")
            #expect(withoutExtensions.output.contains("MalformedExtensions"), "\(withoutExtensions.output)")
        }
    }

    /// Each simulated CRL has the extensions Intel's carry (CRL Number, Authority Key Identifier equal to the
    /// issuer's Subject Key Identifier), read by an independent X.509 implementation (Python cryptography/OpenSSL),
    /// and so does the real Intel root CA CRL in the vectors.
    @Test(
        .enabled(
            if: cryptographyMissing == nil || independentRequired,
            "Python cryptography missing: pip install cryptography"
        )
    )
    func simulatedCRLsHaveIntelsExtensionsIndependently() throws {
        if let missing = Self.cryptographyMissing {
            Issue.record("ENCLAVEKIT_REQUIRE_INDEPENDENT_VERIFIERS=1 but \(missing)")
            return
        }
        let artifacts = try Artifacts()
        let script = """
            import sys
            from cryptography import x509
            crl = x509.load_der_x509_crl(open(sys.argv[1], 'rb').read())
            issuer = x509.load_pem_x509_certificate(open(sys.argv[2], 'rb').read())
            number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
            aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
            ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            assert aki == ski, "AKI is not the issuer's SKI"
            assert crl.is_signature_valid(issuer.public_key()), "bad signature"
            print("crl-number", number, "aki", aki.hex(), "extensions", len(crl.extensions))
            """
        let pki = artifacts.directory + "/platform/pki/"
        for (name, issuer) in [("root_ca_crl", "root-ca.pem"), ("pck_crl", "platform-ca.pem")] {
            let path = artifacts.directory + "/" + name + ".der"
            try Data(try artifacts.crl(name)).write(to: URL(fileURLWithPath: path))
            let result = try Fixtures.run("/usr/bin/env", ["python3", "-c", script, path, pki + issuer])
            #expect(result.status == 0 && result.output.contains("extensions 2"), "\(name): \(result.output)")
        }
    }

    /// The simulated CRLs, parsed with swift-asn1, carry CRL Number (2.5.29.20) and Authority Key Identifier
    /// (2.5.29.35) as Intel's root CA CRL in the vectors does; a revoked entry has reason code keyCompromise.
    @Test func simulatedCRLsCarryCRLNumberAndAuthorityKeyIdentifier() throws {
        let artifacts = try Artifacts()
        let intel = try Self.intelRootCACRL()
        #expect(try Self.crlExtensionOIDs(intel) == ["2.5.29.20", "2.5.29.35"])
        try artifacts.platform.setTCB(revokePCK: true)
        let revoked = try artifacts.platform.collateralJSON(issued: artifacts.issued.addingTimeInterval(1))
        for name in ["root_ca_crl", "pck_crl"] {
            let der = try Self.hexField(name, of: revoked)
            #expect(try Self.crlExtensionOIDs(der) == ["2.5.29.20", "2.5.29.35"], "\(name)")
            // Our own parser still reads it.
            _ = try CertificateRevocationList(bytes: der)
        }
        let pck = try Self.hexField("pck_crl", of: revoked)
        #expect(try Self.entryExtensionOIDs(pck) == [["2.5.29.21"]])
    }

    static func intelRootCACRL() throws -> [UInt8] {
        let path = Vectors.root + "/sgx/phala-dcap-qvl/sgx_quote_collateral.json"
        return try hexField("root_ca_crl", of: Array(try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    /// A hexadecimal field of a dcap-qvl JSON bundle, decoded.
    static func hexField(_ name: String, of json: [UInt8]) throws -> [UInt8] {
        let object = try JSONSerialization.jsonObject(with: Data(json))
        let bundle = try #require(object as? [String: Any])
        let text = try #require(bundle[name] as? String, "no \(name)")
        return try #require(Hex.decode(text), "\(name) is not hexadecimal")
    }

    /// The `tbsCertList` children of a CRL.
    static func tbsChildren(_ der: [UInt8]) throws -> [ASN1Node] {
        let root = try DER.parse(der)
        guard case .constructed(let outer) = root.content, let tbs = Array(outer).first,
            case .constructed(let fields) = tbs.content
        else { throw ASN1Error.invalidASN1Object(reason: "not a CRL") }
        return Array(fields)
    }

    /// The OIDs of `crlExtensions [0]`, in order.
    static func crlExtensionOIDs(_ der: [UInt8]) throws -> [String] {
        let children = try tbsChildren(der)
        let tagged = try #require(
            children.first { $0.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) },
            "no crlExtensions"
        )
        guard case .constructed(let wrapper) = tagged.content, let list = Array(wrapper).first else {
            throw ASN1Error.invalidASN1Object(reason: "empty crlExtensions")
        }
        return try extensionOIDs(list)
    }

    /// The OIDs of each revoked entry's `crlEntryExtensions`.
    static func entryExtensionOIDs(_ der: [UInt8]) throws -> [[String]] {
        let sequences = try tbsChildren(der).filter { $0.identifier == .sequence }
        // algorithm, issuer, revokedCertificates
        let revoked = try #require(sequences.count == 3 ? sequences[2] : nil)
        guard case .constructed(let entries) = revoked.content else { return [] }
        return try entries.map { entry in
            guard case .constructed(let fields) = entry.content, let list = Array(fields).dropFirst(2).first else {
                return []
            }
            return try extensionOIDs(list)
        }
    }

    static func extensionOIDs(_ list: ASN1Node) throws -> [String] {
        guard case .constructed(let items) = list.content else { return [] }
        return try items.map { item in
            guard case .constructed(let fields) = item.content, let oid = Array(fields).first else {
                throw ASN1Error.invalidASN1Object(reason: "extension without OID")
            }
            return try ASN1ObjectIdentifier(derEncoded: oid).description
        }
    }

    /// Each simulated certificate carries the extensions of its counterpart in Intel's PKI (from the vectors: a
    /// real quote's PCK chain and the TCB info issuer chain), in the same order with the same criticality:
    /// Authority Key Identifier, CRL Distribution Points, Subject Key Identifier, Key Usage and Basic Constraints
    /// (critical), and the PCK's SGX extension; the end entities used to lack a Subject Key Identifier, the root an
    /// Authority Key Identifier, and all of them the CRL Distribution Points.
    @Test func simulatedCertificatesHaveTheExtensionsOfIntels() throws {
        let artifacts = try Artifacts()
        let pki = artifacts.directory + "/platform/pki/"
        func simulated(_ name: String) throws -> Certificate {
            try Certificate(
                pemEncoded: String(decoding: try Data(contentsOf: URL(fileURLWithPath: pki + name)), as: UTF8.self)
            )
        }
        let quote = try DCAPQuote(
            bytes: Array(try Data(contentsOf: URL(fileURLWithPath: Vectors.root + "/sgx/phala-dcap-qvl/sgx_quote")))
        )
        let pckChain = try Self.certificates(String(decoding: quote.certification.data, as: UTF8.self))
        let collateral = try Collateral(
            dcapQVLJSON: Array(
                try Data(
                    contentsOf: URL(fileURLWithPath: Vectors.root + "/sgx/phala-dcap-qvl/sgx_quote_collateral.json")
                )
            )
        )
        try #require(pckChain.count == 3 && collateral.tcbInfoIssuerChain.count == 2)
        let pairs: [(String, Certificate, Certificate)] = [
            ("PCK", try simulated("pck.pem"), pckChain[0]),
            ("platform CA", try simulated("platform-ca.pem"), pckChain[1]),
            ("root CA", try simulated("root-ca.pem"), pckChain[2]),
            ("TCB signing", try simulated("tcb-signing.pem"), collateral.tcbInfoIssuerChain[0]),
        ]
        for (name, ours, intels) in pairs {
            #expect(Self.layout(ours) == Self.layout(intels), "\(name)")
            #expect(try ours.extensions.subjectKeyIdentifier != nil, "\(name)")
            let authority = try #require(try ours.extensions.authorityKeyIdentifier?.keyIdentifier, "\(name)")
            let issuer = name == "PCK" ? try simulated("platform-ca.pem") : try simulated("root-ca.pem")
            #expect(authority == (try issuer.extensions.subjectKeyIdentifier?.keyIdentifier), "\(name)")
        }
    }

    /// Each extension's OID and criticality, in order.
    static func layout(_ certificate: Certificate) -> [String] {
        certificate.extensions.map { "\($0.oid)\($0.critical ? " critical" : "")" }
    }

    static func certificates(_ pem: String) throws -> [Certificate] {
        try pem.components(separatedBy: "-----END CERTIFICATE-----").dropLast().map {
            try Certificate(pemEncoded: $0 + "-----END CERTIFICATE-----")
        }
    }
}
