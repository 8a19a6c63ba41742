import ArgumentParser
import Attestation
import EnclaveCore
import EnclaveHost
import Foundation
import X509

extension EnclaveCommand.Bench {
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Simulated SGX quote verification rate, with and without the per-platform cache."
        )

        @Option(help: "Quotes verified per path.")
        var quotes = 2000

        @Flag(help: "Print JSON.")
        var json = false

        func run() async throws {
            let directory = NSTemporaryDirectory() + "enclavekit-bench-platform-" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let platform = try SimulatedPlatform.open(directory: directory)
            let identity = EnclaveIdentity(
                uniqueID: try Digest32(bytes: [UInt8](repeating: 1, count: 32)),
                signerID: try Digest32(bytes: [UInt8](repeating: 2, count: 32)),
                productID: 1,
                securityVersion: 1,
                attributes: []
            )
            let count = max(10, quotes)
            var evidence: [DCAPQuote] = []
            for index in 0..<count {
                let reportData =
                    withUnsafeBytes(of: UInt64(index).littleEndian, Array.init) + [UInt8](repeating: 0, count: 56)
                evidence.append(try DCAPQuote(bytes: platform.quote(for: identity, reportData: reportData)))
            }
            let collateral = try Collateral(
                dcapQVLJSON: platform.collateralJSON(issued: Date().addingTimeInterval(-60))
            )
            let anchors = [
                DCAPQuote.TrustAnchor(
                    certificate: try Certificate(pemEncoded: platform.rootCertificatePEM()),
                    simulated: true
                )
            ]
            let time = Date()

            func measure(cache: VerificationCache?) async throws -> (rate: Double, signatures: Double) {
                let counter = SignatureCounter()
                let clock = ContinuousClock()
                let start = clock.now
                try await SignatureCounter.$current.withValue(counter) {
                    for quote in evidence {
                        let claims = try await quote.verify(
                            anchors: anchors,
                            collateral: collateral,
                            at: time,
                            cache: cache
                        )
                        precondition(claims.tcbStatus == .upToDate)
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
                    "quotes": count,
                    "uncached": [
                        "verificationsPerSecond": full.rate, "signatureVerificationsPerQuote": full.signatures,
                    ],
                    "cached": [
                        "verificationsPerSecond": cached.rate, "signatureVerificationsPerQuote": cached.signatures,
                    ],
                ]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            print("enclave bench verify — \(count) simulated SGX quotes from one platform, full collateral checks")
            print("path            verifications/s   signature verifications per quote")
            print("uncached" + String(format: "%24.0f", full.rate) + String(format: "%20.1f", full.signatures))
            print("cached  " + String(format: "%24.0f", cached.rate) + String(format: "%20.1f", cached.signatures))
            print("target: the cached path does only the per-quote signatures (QE report, quote): 2")
        }
    }
}
