import ArgumentParser
import Attestation
import EnclaveCore
import EnclaveHost
import Foundation
import X509

extension EnclaveCommand.Bench {
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Quote verification rate, with and without the per-platform cache.",
            discussion: """
                Without QUOTE: simulated SGX quotes from a throw-away platform. With QUOTE (SGX or TDX) and \
                --collateral: that real quote, verified repeatedly at --at. Reference: dcap-qvl takes about 0.5 ms \
                per full verification on a 2-vCPU machine.
                """
        )

        @Argument(help: "A real quote to verify repeatedly (needs --collateral and usually --at).")
        var quote: String?

        @Option(help: "Collateral for QUOTE: a dcap-qvl JSON bundle or a PCCS directory.")
        var collateral: String?

        @Option(help: "Verification time for QUOTE as Unix seconds (default: now).")
        var at: Int64?

        @Option(help: "Quotes verified per path.")
        var quotes = 2000

        @Flag(help: "Print JSON.")
        var json = false

        func run() async throws {
            let count = max(10, quotes)
            let evidence: [[UInt8]]
            let collateral: Collateral
            let anchors: [DCAPQuote.TrustAnchor]
            let time: Date
            let label: String
            var directory: String?
            defer { if let directory { try? FileManager.default.removeItem(atPath: directory) } }
            if let quote {
                guard let path = self.collateral else { throw ValidationError("QUOTE needs --collateral") }
                let parsed = try DCAPQuote(bytes: Files.evidence(quote))
                evidence = Array(repeating: parsed.bytes, count: count)
                collateral = try Collateral(contentsOf: path)
                anchors = [DCAPQuote.TrustAnchor(certificate: IntelRoots.sgxRootCA, simulated: false)]
                time = at.map { Date(timeIntervalSince1970: TimeInterval($0)) } ?? Date()
                label =
                    "\(parsed.isTDX ? "TDX" : "SGX") quote v\(parsed.header.version) \((quote as NSString).lastPathComponent)"
                // Fail early, with the check's name, if it does not verify at all.
                _ = try await parsed.verify(anchors: anchors, collateral: collateral, at: time)
            } else {
                let temporary = NSTemporaryDirectory() + "enclavekit-bench-platform-" + UUID().uuidString
                directory = temporary
                let platform = try SimulatedPlatform.open(directory: temporary)
                let identity = EnclaveIdentity(
                    uniqueID: try Digest32(bytes: [UInt8](repeating: 1, count: 32)),
                    signerID: try Digest32(bytes: [UInt8](repeating: 2, count: 32)),
                    productID: 1,
                    securityVersion: 1,
                    attributes: []
                )
                var quotes: [[UInt8]] = []
                for index in 0..<count {
                    let reportData =
                        withUnsafeBytes(of: UInt64(index).littleEndian, Array.init) + [UInt8](repeating: 0, count: 56)
                    quotes.append(try platform.quote(for: identity, reportData: reportData))
                }
                evidence = quotes
                collateral = try Collateral(
                    dcapQVLJSON: platform.collateralJSON(issued: Date().addingTimeInterval(-60))
                )
                anchors = [
                    DCAPQuote.TrustAnchor(
                        certificate: try Certificate(pemEncoded: platform.rootCertificatePEM()),
                        simulated: true
                    )
                ]
                time = Date()
                label = "\(count) simulated SGX quotes from one platform"
            }

            func measure(cache: VerificationCache?) async throws -> (rate: Double, signatures: Double) {
                let counter = SignatureCounter()
                let clock = ContinuousClock()
                let start = clock.now
                try await SignatureCounter.$current.withValue(counter) {
                    for bytes in evidence {
                        let quote = try DCAPQuote(bytes: bytes)  // parsing is part of each verification
                        let claims = try await quote.verify(
                            anchors: anchors,
                            collateral: collateral,
                            at: time,
                            cache: cache
                        )
                        precondition(claims.tcbStatus != nil)
                    }
                }
                let elapsed = clock.now - start
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                return (Double(count) / seconds, Double(counter.value) / Double(count))
            }
            _ = try await measure(cache: nil)  // warm up
            let full = try await measure(cache: nil)
            let cached = try await measure(cache: VerificationCache())
            if json {
                let object: [String: Any] = [
                    "evidence": label, "quotes": count,
                    "uncached": [
                        "verificationsPerSecond": full.rate, "microsecondsPerVerification": 1e6 / full.rate,
                        "signatureVerificationsPerQuote": full.signatures,
                    ],
                    "cached": [
                        "verificationsPerSecond": cached.rate, "microsecondsPerVerification": 1e6 / cached.rate,
                        "signatureVerificationsPerQuote": cached.signatures,
                    ],
                    "cachedSpeedup": cached.rate / full.rate,
                ]
                try Files.printJSON(object)
                return
            }
            print("enclave bench verify — \(label), full collateral checks, \(count) verifications per path")
            print("path        verifications/s   µs/verification   signature verifications per quote")
            for (name, result) in [("uncached", full), ("cached  ", cached)] {
                print(
                    name + String(format: "%19.0f", result.rate) + String(format: "%18.1f", 1e6 / result.rate)
                        + String(format: "%20.1f", result.signatures)
                )
            }
            print(String(format: "cached / uncached: %.1f×", cached.rate / full.rate))
            print("reference: dcap-qvl ≈ 500 µs per full verification on this class of machine (2 vCPUs)")
        }
    }
}
