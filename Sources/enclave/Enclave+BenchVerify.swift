import ArgumentParser
import Attestation
import EnclaveCore
import EnclaveHost
import Foundation
import X509

extension EnclaveCommand.Bench {
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Quote verification latency and rate, beside dcap-qvl's in the same run.",
            discussion: """
                Without QUOTE: simulated SGX quotes from a throw-away platform. With QUOTE (SGX or TDX) and \
                --collateral: that real quote, verified repeatedly at --at; when a Python that imports dcap_qvl is \
                found (--python, $ENCLAVEKIT_DCAP_QVL_PYTHON, python3 on PATH) and the collateral is a dcap-qvl JSON \
                bundle, dcap-qvl verifies the same quote, collateral and time in rounds alternating with ours.

                What each figure includes. ours, bundle parsed per call (no cache): reading the JSON bundle (hex, PEM \
                issuer chains; issuing certificates such as the PCK CA and TCB Signing certificate taken from the \
                process's CertificateCache by their exact DER bytes), parsing the quote, its PEM PCK chain (a certificate whose DER bytes equal Intel's pinned root or one \
                already parsed from the same bundle, such as the PCK CA of the PCK CRL's issuer chain, is compared \
                byte for byte instead of parsed again), both DER CRLs, the TCB info and QE identity JSON, building and \
                validating the PCK path and the TCB signing path, both CRL signatures, revocation of every \
                certificate, the TCB info, QE identity, QE report and quote signatures, the QE identity and TCB level \
                evaluation. ours, collateral object: the same with the collateral made once (Collateral: issuer \
                chains parsed when it is made; CRLs, TCB info and QE identity on first use, reused while their bytes \
                are unchanged; every signature still checked on every call). ours, bundle per call (CollateralCache): \
                Collateral(dcapQVLJSON:) as callers use it, the bundle's bytes hashed (SHA-256) and compared with a \
                bundle parsed before, then as the collateral object. \
                dcap-qvl object: `verify(quote, collateral, now)` with a QuoteCollateralV3 made once (it keeps PEM, \
                DER and JSON as bytes and parses them in every call). dcap-qvl bundle: `QuoteCollateralV3.from_json` \
                inside each call as well. cached: ours with a VerificationCache (the platform's path and collateral \
                checked once; each quote then costs its own signature check and the policy evaluation).
                """
        )

        @Argument(help: "A real quote to verify repeatedly (needs --collateral and usually --at).")
        var quote: String?

        @Option(help: "Collateral for QUOTE: a dcap-qvl JSON bundle or a PCCS directory.")
        var collateral: String?

        @Option(help: "Verification time for QUOTE as Unix seconds (default: now).")
        var at: Int64?

        @Option(help: "Verifications per path in each round.")
        var quotes = 200

        @Option(help: "Rounds: each runs every path once, ours and dcap-qvl's alternately.")
        var rounds = 5

        @Option(help: "A Python that imports dcap_qvl (pip install dcap-qvl==0.7.0).")
        var python: String?

        @Flag(help: "Print JSON.")
        var json = false

        @Option(
            help: ArgumentHelp(
                "Run only one of our paths (bundle, cold, object or cached), --rounds × --quotes times, for a "
                    + "profiler; phases: the median time of each parsing step alone.",
                visibility: .hidden
            )
        )
        var only: String?

        /// Latencies in microseconds, and what they add up to.
        struct Figures {
            var latencies: [Double]
            var median: Double { Self.percentile(latencies, 50) }
            var p99: Double { Self.percentile(latencies, 99) }
            var mean: Double { latencies.reduce(0, +) / Double(max(1, latencies.count)) }
            var json: [String: Any] {
                [
                    "medianMicros": median, "p99Micros": p99, "meanMicros": mean,
                    "verificationsPerSecond": 1e6 / mean, "verifications": latencies.count,
                ]
            }

            static func percentile(_ values: [Double], _ percent: Int) -> Double {
                let sorted = values.sorted()
                guard !sorted.isEmpty else { return .nan }
                return sorted[min(sorted.count - 1, sorted.count * percent / 100)]
            }
        }

        /// `--only phases`: the median of `count` runs of each parsing step of a from-scratch verification on its
        /// own (no signature is checked), to see where the parse time goes.
        static func phases(evidence: [UInt8], collateral: Collateral, bundle: [UInt8]?, count: Int) throws {
            let clock = ContinuousClock()
            func time(_ name: String, _ body: () throws -> Void) rethrows {
                var latencies: [Double] = []
                latencies.reserveCapacity(count)
                for _ in 0..<count {
                    let start = clock.now
                    try body()
                    let elapsed = clock.now - start
                    latencies.append(
                        Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12
                    )
                }
                let figures = Figures(latencies: latencies)
                print(
                    name.padding(toLength: 40, withPad: " ", startingAt: 0)
                        + String(format: "median %8.1f µs, p99 %8.1f µs", figures.median, figures.p99)
                )
            }
            if let bundle {
                try time("bundle (no CollateralCache)") { _ = try Collateral(dcapQVLJSON: bundle, cache: nil) }
            }
            try time("TCB info JSON") { _ = try TCBInfo(jsonBytes: collateral.tcbInfoBytes) }
            try time("QE identity JSON") { _ = try QEIdentity(jsonBytes: collateral.qeIdentityBytes) }
            try time("root CA CRL") { _ = try CertificateRevocationList(bytes: collateral.rootCACRL) }
            try time("PCK CRL") { _ = try CertificateRevocationList(bytes: collateral.pckCRL) }
            try time("quote") { _ = try DCAPQuote(bytes: evidence) }
            let quote = try DCAPQuote(bytes: evidence)
            try time("PCK chain (PEM, leaf parsed)") { _ = try quote.pckChain() }
            let leaf = try quote.pckChain()[0]
            guard let value = leaf.extensions.first(where: { $0.oid == SGXExtensions.oid })?.value else {
                throw ValidationError("the PCK certificate has no SGX extension")
            }
            try time("SGX extension") { _ = try SGXExtensions(derEncoded: value) }
        }

        func run() async throws {
            let count = max(10, quotes)
            let rounds = max(1, self.rounds)
            let evidence: [[UInt8]]
            let collateral: Collateral
            var bundle: [UInt8]?
            let anchors: [DCAPQuote.TrustAnchor]
            let time: Date
            let label: String
            var peer: DCAPQVLPeer?
            var peerNote = ""
            var directory: String?
            defer {
                peer?.stop()
                if let directory { try? FileManager.default.removeItem(atPath: directory) }
            }
            if let quote {
                guard let path = self.collateral else { throw ValidationError("QUOTE needs --collateral") }
                let parsed = try DCAPQuote(bytes: Files.evidence(quote))
                evidence = Array(repeating: parsed.bytes, count: count)
                collateral = try Collateral(contentsOf: path)
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                    bundle = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
                }
                anchors = [DCAPQuote.TrustAnchor(certificate: IntelRoots.sgxRootCA, simulated: false)]
                time = at.map { Date(timeIntervalSince1970: TimeInterval($0)) } ?? Date()
                label =
                    "\(parsed.isTDX ? "TDX" : "SGX") quote v\(parsed.header.version) \((quote as NSString).lastPathComponent)"
                // Fail early, with the check's name, if it does not verify at all.
                _ = try await parsed.verify(anchors: anchors, collateral: collateral, at: time)
                if bundle == nil {
                    peerNote = "dcap-qvl: not run (it takes a JSON bundle; --collateral is a directory)"
                } else if only == nil, let python = DCAPQVLPeer.python(self.python) {
                    // dcap-qvl reads binary quotes: hand it the decoded bytes.
                    let temporary = NSTemporaryDirectory() + "enclavekit-bench-verify-" + UUID().uuidString
                    directory = temporary
                    try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
                    try Data(parsed.bytes).write(to: URL(fileURLWithPath: temporary + "/quote"))
                    do {
                        peer = try DCAPQVLPeer(
                            python: python,
                            quote: temporary + "/quote",
                            collateral: path,
                            now: Int64(time.timeIntervalSince1970)
                        )
                    } catch {
                        peerNote = "dcap-qvl: not run (\(error))"
                    }
                } else {
                    peerNote =
                        "dcap-qvl: not run (no Python imports dcap_qvl: pip install dcap-qvl==0.7.0, then --python)"
                }
            } else {
                let temporary = NSTemporaryDirectory() + "enclavekit-bench-platform-" + UUID().uuidString
                directory = temporary
                let platform = try SimulatedPlatform.open(directory: temporary)
                let identity = try BenchIdentity.standIn()
                var quotes: [[UInt8]] = []
                for index in 0..<count {
                    let reportData =
                        withUnsafeBytes(of: UInt64(index).littleEndian, Array.init) + [UInt8](repeating: 0, count: 56)
                    quotes.append(try platform.quote(for: identity, reportData: reportData))
                }
                evidence = quotes
                time = Date()
                // As the service issues it (once per TCB state).
                bundle = try platform.collateralJSON(at: time)
                collateral = try Collateral(dcapQVLJSON: bundle ?? [])
                anchors = [
                    DCAPQuote.TrustAnchor(
                        certificate: try Certificate(pemEncoded: platform.rootCertificatePEM()),
                        simulated: true
                    )
                ]
                label = "\(count) simulated SGX quotes from one platform"
                peerNote = "dcap-qvl: not run (simulated quotes; give a real QUOTE and its JSON bundle)"
            }

            let clock = ContinuousClock()
            func micros(_ duration: Duration) -> Double {
                Double(duration.components.seconds) * 1e6 + Double(duration.components.attoseconds) / 1e12
            }
            /// One path: `count` verifications, each timed.
            /// `bundlePerCall`: the collateral read from the bundle's bytes in each call, through the process's
            /// `CollateralCache` unless `cold` (then parsed in full every time).
            func measure(bundlePerCall: Bool, cold: Bool = false, cache: VerificationCache?) async throws -> [Double] {
                var latencies: [Double] = []
                latencies.reserveCapacity(count)
                for bytes in evidence {
                    let start = clock.now
                    let quote = try DCAPQuote(bytes: bytes)
                    let claims = try await quote.verify(
                        anchors: anchors,
                        collateral: bundlePerCall
                            ? Collateral(dcapQVLJSON: bundle ?? [], cache: cold ? nil : .shared) : collateral,
                        at: time,
                        cache: cache
                    )
                    latencies.append(micros(clock.now - start))
                    precondition(claims.tcbStatus != nil)
                }
                return latencies
            }
            /// `workers` tasks verifying `count` quotes between them: verifications per second.
            func throughput(workers: Int, cache: VerificationCache?) async throws -> Double {
                let start = clock.now
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<workers {
                        group.addTask {
                            var index = worker
                            while index < evidence.count {
                                let quote = try DCAPQuote(bytes: evidence[index])
                                _ = try await quote.verify(
                                    anchors: anchors,
                                    collateral: collateral,
                                    at: time,
                                    cache: cache
                                )
                                index += workers
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                return Double(evidence.count) / (micros(clock.now - start) / 1e6)
            }
            let cache = VerificationCache()
            if only == "phases" {
                try Self.phases(evidence: evidence[0], collateral: collateral, bundle: bundle, count: count * rounds)
                return
            }
            if let only {
                guard ["bundle", "cold", "object", "cached"].contains(only) else {
                    throw ValidationError("--only takes bundle, cold, object, cached or phases")
                }
                if only == "cached" { _ = try await measure(bundlePerCall: false, cache: cache) }
                var latencies: [Double] = []
                for _ in 0..<rounds {
                    latencies += try await measure(
                        bundlePerCall: only == "bundle" || only == "cold",
                        cold: only == "cold",
                        cache: only == "cached" ? cache : nil
                    )
                }
                let figures = Figures(latencies: latencies)
                print(String(format: "%@: median %.1f µs, p99 %.1f µs", only, figures.median, figures.p99))
                return
            }
            let counter = SignatureCounter()
            _ = try await SignatureCounter.$current.withValue(counter) {
                try await measure(bundlePerCall: false, cache: nil)
            }
            let signaturesPerQuote = Double(counter.value) / Double(count)
            _ = try await measure(bundlePerCall: true, cache: cache)  // warm up, fill the cache
            var oursBundle: [Double] = []
            var oursCold: [Double] = []
            var oursObject: [Double] = []
            var oursCached: [Double] = []
            var theirsBundle: [Double] = []
            var theirsObject: [Double] = []
            for _ in 0..<rounds {
                oursBundle += try await measure(bundlePerCall: true, cache: nil)
                if peer != nil { theirsBundle += try peer!.measure(.bundle, count: count) }
                oursCold += try await measure(bundlePerCall: true, cold: true, cache: nil)
                oursObject += try await measure(bundlePerCall: false, cache: nil)
                if peer != nil { theirsObject += try peer!.measure(.object, count: count) }
                oursCached += try await measure(bundlePerCall: false, cache: cache)
            }
            let workers = max(1, ProcessInfo.processInfo.activeProcessorCount)
            let concurrentRate = try await throughput(workers: workers, cache: nil)
            let sequentialRate = try await throughput(workers: 1, cache: nil)

            let ours = (
                bundle: Figures(latencies: oursBundle), cold: Figures(latencies: oursCold),
                object: Figures(latencies: oursObject)
            )
            let cached = Figures(latencies: oursCached)
            let theirs =
                peer == nil ? nil : (bundle: Figures(latencies: theirsBundle), object: Figures(latencies: theirsObject))
            if json {
                var object: [String: Any] = [
                    "evidence": label, "verificationsPerPath": count * rounds, "rounds": rounds,
                    "signatureVerificationsPerQuote": signaturesPerQuote,
                    "ours": [
                        "bundlePerCall": bundle == nil ? [:] : ours.bundle.json,
                        "bundlePerCallNoCollateralCache": bundle == nil ? [:] : ours.cold.json,
                        "collateralObject": ours.object.json,
                        "cached": cached.json,
                        "throughput": [
                            "workers": workers, "verificationsPerSecond": concurrentRate,
                            "oneWorkerVerificationsPerSecond": sequentialRate,
                        ],
                    ],
                ]
                if let theirs, let peer {
                    object["dcapQVL"] = [
                        "version": peer.version, "status": peer.status,
                        "bundlePerCall": theirs.bundle.json, "collateralObject": theirs.object.json,
                    ]
                    object["oursOverDcapQVLMedian"] = [
                        "bundlePerCall": ours.bundle.median / theirs.bundle.median,
                        "bundlePerCallNoCollateralCache": ours.cold.median / theirs.bundle.median,
                        "collateralObject": ours.object.median / theirs.object.median,
                        "cachedOverDcapQVLObject": cached.median / theirs.object.median,
                    ]
                } else {
                    object["dcapQVL"] = ["note": peerNote]
                }
                try Files.printJSON(object)
                return
            }
            print("enclave bench verify — \(label) at \(Int64(time.timeIntervalSince1970))")
            print(
                "\(rounds) rounds × \(count) verifications per path, ours and dcap-qvl alternating; "
                    + String(format: "%.1f signature verifications per quote (uncached)", signaturesPerQuote)
            )
            print("path                                     median µs     p99 µs   verifications/s   vs dcap-qvl")
            func row(_ name: String, _ figures: Figures, _ peerFigures: Figures?) {
                let ratio = peerFigures.map { String(format: "%11.2f×", figures.median / $0.median) } ?? ""
                print(
                    name.padding(toLength: 40, withPad: " ", startingAt: 0)
                        + String(format: "%11.1f%11.1f%18.0f", figures.median, figures.p99, 1e6 / figures.mean) + ratio
                )
            }
            if bundle != nil {
                row("ours, bundle per call (CollateralCache)", ours.bundle, theirs?.bundle)
                row("ours, bundle parsed per call (no cache)", ours.cold, theirs?.bundle)
            }
            row("ours, collateral object reused", ours.object, theirs?.object)
            if let theirs {
                row("dcap-qvl \(peer?.version ?? ""), bundle parsed per call", theirs.bundle, nil)
                row("dcap-qvl \(peer?.version ?? ""), collateral object", theirs.object, nil)
            }
            row("ours, cached (VerificationCache)", cached, theirs?.object)
            print(
                String(
                    format: "throughput, collateral object: %.0f verifications/s with %d workers, %.0f with one",
                    concurrentRate,
                    workers,
                    sequentialRate
                )
            )
            if let peer { print("dcap-qvl's verdict: \(peer.status)") } else { print(peerNote) }
            print("ratios are medians, ours / dcap-qvl's (< 1: ours is faster); see --help for what each path includes")
        }
    }
}
