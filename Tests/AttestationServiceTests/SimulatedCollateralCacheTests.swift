import Attestation
import AttestationService
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import Testing
import X509

/// Simulated collateral is issued once per TCB state, so the service's verification cache works for simulated
/// evidence as it does for real quotes.
@Suite("Simulated collateral cache")
struct SimulatedCollateralCacheTests {
    /// The signature verifications of each of two attestations of simulated evidence, seconds apart, by a service
    /// whose simulated collateral comes from `collateral`.
    static func signatureCounts(
        collateral: (SimulatedPlatform) -> @Sendable (Date) throws -> Collateral
    ) async throws -> [Int] {
        let directory = NSTemporaryDirectory() + "enclavekit-service-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let platform = try SimulatedPlatform.open(directory: directory + "/platform")
        var configuration = AttestationServiceCore.Configuration(issuer: "http://attestation.test")
        configuration.allowSimulated = true
        configuration.simulatedAnchor = try Certificate(pemEncoded: platform.rootCertificatePEM())
        configuration.simulatedCollateral = collateral(platform)
        let store = try await SQLiteServiceStore.open(directory: directory + "/data")
        let core = try await AttestationServiceCore(configuration: configuration, store: store)
        let identity = EnclaveIdentity(
            uniqueID: try Digest32(bytes: [UInt8](repeating: 0xAA, count: 32)),
            signerID: try Digest32(bytes: [UInt8](repeating: 0xBB, count: 32)),
            productID: 9,
            securityVersion: 4,
            attributes: []
        )
        var counts: [Int] = []
        let start = Date()
        for index in 0..<2 {
            let runtime = Array("request \(index)".utf8)
            let evidence = try platform.quote(
                for: identity,
                reportData: Array(SHA256.hash(data: runtime)) + [UInt8](repeating: 0, count: 32)
            )
            let counter = SignatureCounter()
            let token = try await SignatureCounter.$current.withValue(counter) {
                try await core.attest(
                    type: .simulatedEnclave,
                    request: .init(evidence: evidence, runtimeData: (runtime, false)),
                    at: start.addingTimeInterval(Double(index) * 5)
                )
            }
            #expect(!token.isEmpty)
            counts.append(counter.value)
        }
        try? await store.close()
        return counts
    }

    /// As `enclave serve --allow-simulated` configures it (``AttestationServiceCore/Configuration/simulatedCollateral(bundle:)``
    /// over `collateralJSON(at:)`): the second attestation reuses the verified PCK path and collateral, and checks
    /// only its own quote's signature.
    @Test func secondSimulatedAttestationHitsTheVerificationCache() async throws {
        let counts = try await Self.signatureCounts { platform in
            AttestationServiceCore.Configuration.simulatedCollateral { time in try platform.collateralJSON(at: time) }
        }
        #expect(counts.count == 2)
        #expect(counts[0] > 1, "the first attestation verifies the chain and collateral: \(counts)")
        #expect(counts[1] == 1, "the second checks only its quote's signature: \(counts)")
    }

    /// What the service did before: collateral issued per request (new signatures each time) never hit the cache.
    @Test func collateralIssuedPerRequestMissesTheCache() async throws {
        let counts = try await Self.signatureCounts { platform in
            { time in try Collateral(dcapQVLJSON: platform.collateralJSON(issued: time.addingTimeInterval(-60))) }
        }
        #expect(counts.count == 2 && counts[1] == counts[0] && counts[1] > 1, "\(counts)")
    }

    /// The same bytes until the TCB state changes or the time leaves their validity; then new ones.
    @Test func collateralIsIssuedOncePerTCBState() throws {
        let directory = NSTemporaryDirectory() + "enclavekit-service-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let platform = try SimulatedPlatform.open(directory: directory + "/platform")
        let now = Date()
        let first = try platform.collateralJSON(at: now)
        #expect(try platform.collateralJSON(at: now.addingTimeInterval(3600)) == first)
        // Before its issue date, or past its refresh point (a day before it expires): issued anew.
        #expect(try platform.collateralJSON(at: now.addingTimeInterval(-3600)) != first)
        let second = try platform.collateralJSON(at: now)
        #expect(try platform.collateralJSON(at: now.addingTimeInterval(SimulatedPlatform.collateralValidity)) != second)
        // A new TCB state: new collateral stating it.
        let third = try platform.collateralJSON(at: now)
        try platform.setTCB(revokePCK: true)
        let revoked = try platform.collateralJSON(at: now)
        #expect(revoked != third)
        let crl = try CertificateRevocationList(bytes: try Collateral(dcapQVLJSON: revoked).pckCRL)
        #expect(crl.revokedSerials.count == 1)
        #expect(try platform.collateralJSON(at: now) == revoked)
    }

    /// The served path parses a bundle once: the same bytes give the collateral parsed before, a bundle that
    /// differs in one byte of its PCK CRL is parsed anew (compared by bytes, not identity), and the first bundle
    /// again gives its own collateral back.
    @Test func bundleParserComparesBytes() throws {
        let directory = NSTemporaryDirectory() + "enclavekit-service-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let platform = try SimulatedPlatform.open(directory: directory + "/platform")
        let bundle = try platform.collateralJSON(at: Date())
        let parser = BundleCollateralParser()
        let first = try parser.collateral(bundle)
        #expect(try parser.collateral(Array(bundle)).pckCRL == first.pckCRL)
        // One hexadecimal digit of the PCK CRL's signature changed (the CRL's last bytes are its signature).
        let text = String(decoding: bundle, as: UTF8.self)
        let crlHex = try #require(
            (try JSONSerialization.jsonObject(with: Data(bundle)) as? [String: String])?["pck_crl"]
        )
        var tamperedHex = Array(crlHex.utf8)
        tamperedHex[tamperedHex.count - 3] = tamperedHex[tamperedHex.count - 3] == UInt8(ascii: "0") ? 0x31 : 0x30
        let tampered = Array(
            text.replacingOccurrences(of: crlHex, with: String(decoding: tamperedHex, as: UTF8.self)).utf8
        )
        #expect(tampered != bundle)
        let second = try parser.collateral(tampered)
        #expect(second.pckCRL != first.pckCRL)
        #expect(Hex.encode(second.pckCRL) == String(decoding: tamperedHex, as: UTF8.self).lowercased())
        #expect(try parser.collateral(bundle).pckCRL == first.pckCRL)
    }
}
