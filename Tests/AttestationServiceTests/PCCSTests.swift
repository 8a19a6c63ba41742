import Attestation
import AttestationClient
import AttestationService
import EnclaveCore
import Foundation
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

/// `--pccs`: collateral fetched from a PCCS (here a local server with the real PCS-format files from the vectors),
/// cached in the store until `nextUpdate`, refreshed ahead of expiry, never served expired. Times are the vectors'
/// (MANIFEST), given to the service as the attestation time.
@Suite("Attestation service: collateral from a PCCS")
struct PCCSTests {
    typealias RealQuote = CollateralServiceTests.RealQuote

    /// The phala SGX collateral's window: TCB info issued 2025-06-19T10:56:11Z, QE identity valid until
    /// 2025-07-19T10:01:18Z (the TCB info, QE identity and PCK CRL are valid 30 days, the root CA CRL a year).
    static let early = Date(timeIntervalSince1970: 1_750_420_800)  // 2025-06-20T12:00:00Z
    static let nearExpiry = Date(timeIntervalSince1970: 1_752_796_800)  // 2025-07-18T00:00:00Z
    static let expired = Date(timeIntervalSince1970: 1_752_926_400)  // 2025-07-19T12:00:00Z

    static let sgxPaths = [
        "/sgx/certification/v4/tcb?fmspc=00A067110000", "/sgx/certification/v4/qe/identity",
        "/sgx/certification/v4/pckcrl?ca=processor&encoding=der", "/sgx/certification/v4/rootcacrl",
    ]

    /// What a test changes from the defaults.
    struct Settings: Sendable {
        var clock: (@Sendable () -> Date)?
        var allowChainOnly = false
        /// Long, so that no answer of a working fake PCCS times out on a loaded machine; the timeout itself is
        /// tested with a stalling PCCS and a short one.
        var timeout = Duration.seconds(30)
        var maxResponseSize = 1 << 20
    }

    /// A PCCS serving `bundles`, a service on a fresh SQLite store using it, and the test; both are stopped after.
    /// The refusal of `quote` as SGX evidence at `time` (a token is recorded as an issue).
    static func refusal(
        _ core: AttestationServiceCore,
        _ quote: CollateralServiceTests.RealQuote,
        at time: Date
    ) async -> ServiceError? {
        await CollateralServiceTests.refusal {
            try await core.attest(type: .sgxEnclave, request: .init(evidence: quote.evidence), at: time)
        }
    }

    static func withPCCS(
        bundles: [(String, String)] = [("sgx/phala-dcap-qvl/sgx_quote_collateral.json", "sgx")],
        settings: Settings = Settings(),
        _ body: (FakePCCS, AttestationServiceCore, String) async throws -> Void
    ) async throws {
        let pccs = FakePCCS()
        for (path, tee) in bundles { try pccs.serve(bundle: path, tee: tee) }
        try await pccs.start()
        let directory = NSTemporaryDirectory() + "enclavekit-pccs-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try await SQLiteServiceStore.open(directory: directory)
        do {
            let core = try await makeCore(pccs: pccs, store: store, settings: settings)
            try await body(pccs, core, directory)
        } catch {
            await pccs.stop()
            try? await store.close()
            throw error
        }
        await pccs.stop()
        try await store.close()
    }

    static func makeCore(
        pccs: FakePCCS,
        store: any ServiceStore,
        settings: Settings = Settings()
    ) async throws -> AttestationServiceCore {
        var configuration = AttestationServiceCore.Configuration(issuer: "http://attestation.test")
        configuration.allowChainOnly = settings.allowChainOnly
        if let clock = settings.clock { configuration.clock = clock }
        var options = PCCSCollateralSource.Options(baseURL: pccs.baseURL + "/")
        options.timeout = settings.timeout
        options.maxResponseSize = settings.maxResponseSize
        configuration.collateralSource = try PCCSCollateralSource(options: options, store: store)
        return try await AttestationServiceCore(configuration: configuration, store: store)
    }

    static func tcbStatus(_ token: String, _ core: AttestationServiceCore, at time: Date) async throws -> TokenValue? {
        try await CollateralServiceTests.claims(token, core: core, at: time)["x-enclavekit-tcb-status"]
    }

    /// Fetched once (each of the four pieces), then served from memory; a new instance on the same store (a
    /// restart, a replica) fetches nothing.
    @Test func fetchedOnceAndCachedInTheStore() async throws {
        let quote = try RealQuote.sgx()
        try await Self.withPCCS { pccs, core, directory in
            for offset in [0.0, 60, 3600] {
                let token = try await core.attest(
                    type: .sgxEnclave,
                    request: .init(evidence: quote.evidence),
                    at: Self.early.addingTimeInterval(offset)
                )
                #expect(
                    try await Self.tcbStatus(token, core, at: Self.early.addingTimeInterval(offset))
                        == .string(quote.expectedStatus)
                )
            }
            #expect(pccs.counts == Dictionary(uniqueKeysWithValues: Self.sgxPaths.map { ($0, 1) }))

            let restarted = try await Self.makeCore(pccs: pccs, store: core.store)
            let token = try await restarted.attest(
                type: .openEnclave,
                request: .init(evidence: try RealQuote.openEnclave().evidence),
                at: Self.early.addingTimeInterval(7200)
            )
            #expect(
                try await Self.tcbStatus(token, restarted, at: Self.early.addingTimeInterval(7200))
                    == .string(quote.expectedStatus)
            )
            #expect(pccs.total == 4, "\(pccs.counts)")
        }
    }

    /// Near `nextUpdate` the pieces are fetched again (not more often than the minimum interval); while the PCCS is
    /// down the last good copy serves until it expires, and after that the quote is refused, not verified with
    /// stale collateral, and a second request fails at once without asking the PCCS again.
    @Test func refreshedNearExpiryAndNeverServedExpired() async throws {
        let quote = try RealQuote.sgx()
        try await Self.withPCCS { pccs, core, _ in
            let source = try #require(core.configuration.collateralSource as? PCCSCollateralSource)
            func attest(at time: Date) async throws -> TokenValue? {
                let token = try await core.attest(type: .sgxEnclave, request: .init(evidence: quote.evidence), at: time)
                return try await Self.tcbStatus(token, core, at: time)
            }
            #expect(try await attest(at: Self.early) == .string(quote.expectedStatus))
            #expect(pccs.total == 4)

            // Within the last 10 % of the 30-day windows: the cached copies serve, and the TCB info, QE identity and
            // PCK CRL are fetched again in the background; the root CA CRL (valid until 2026) is not.
            #expect(try await attest(at: Self.nearExpiry) == .string(quote.expectedStatus))
            await source.waitForRefreshes()
            #expect(pccs.total == 7, "\(pccs.counts)")
            #expect(pccs.counts["/sgx/certification/v4/rootcacrl"] == 1)
            // Not again within the minimum interval.
            #expect(try await attest(at: Self.nearExpiry.addingTimeInterval(60)) == .string(quote.expectedStatus))
            await source.waitForRefreshes()
            #expect(pccs.total == 7, "\(pccs.counts)")

            // The PCCS goes down: the cached copies are still valid and serve (the refresh fails in the background).
            pccs.setMode(.unavailable)
            #expect(try await attest(at: Self.nearExpiry.addingTimeInterval(3600)) == .string(quote.expectedStatus))
            await source.waitForRefreshes()
            #expect(pccs.total > 7, "the refresh was not tried: \(pccs.counts)")
            #expect(try await attest(at: Self.nearExpiry.addingTimeInterval(3700)) == .string(quote.expectedStatus))
            await source.waitForRefreshes()

            // Expired, and nothing newer can be fetched: refused by name.
            let error = await CollateralServiceTests.refusal {
                try await core.attest(type: .sgxEnclave, request: .init(evidence: quote.evidence), at: Self.expired)
            }
            #expect(error?.code == "CollateralFetchFailed", "\(String(describing: error))")
            #expect(error?.message.contains("expired") == true, "\(String(describing: error))")
            #expect(error?.status == 503)
            // Again at once: refused without asking the PCCS again (no pile-up of requests on a PCCS that is down).
            let asked = pccs.total
            let second = await CollateralServiceTests.refusal {
                try await core.attest(
                    type: .sgxEnclave,
                    request: .init(evidence: quote.evidence),
                    at: Self.expired.addingTimeInterval(1)
                )
            }
            #expect(second?.code == "CollateralFetchFailed", "\(String(describing: second))")
            #expect(pccs.total == asked, "asked the PCCS again: \(pccs.counts)")
        }
    }

    /// The PCCS is up but has nothing newer than the expired copy: refused too, the expired copy is not used.
    @Test func anExpiredAnswerIsRefused() async throws {
        let quote = try RealQuote.sgx()
        try await Self.withPCCS { pccs, core, _ in
            let error = await CollateralServiceTests.refusal {
                try await core.attest(type: .sgxEnclave, request: .init(evidence: quote.evidence), at: Self.expired)
            }
            #expect(error?.code == "CollateralFetchFailed", "\(String(describing: error))")
            #expect(error?.message.contains("not at 2025-07-19T12:00:00Z") == true, "\(String(describing: error))")
        }
    }

    /// A PCCS answering garbage, redirecting, or sending more than the size limit: refused by name.
    @Test func badAnswersAreRefusedByName() async throws {
        let quote = try RealQuote.sgx()
        try await Self.withPCCS(settings: Settings(maxResponseSize: 8 << 10)) { pccs, core, _ in
            pccs.setMode(.garbage)
            let garbage = await CollateralServiceTests.refusal {
                try await core.attest(type: .sgxEnclave, request: .init(evidence: quote.evidence), at: Self.early)
            }
            #expect(garbage?.code == "CollateralFetchFailed", "\(String(describing: garbage))")
            #expect(
                garbage?.message.contains("did not answer with the SGX TCB info for FMSPC 00a067110000") == true,
                "\(String(describing: garbage))"
            )

            // A redirect is not followed: the operator named the PCCS.
            pccs.setMode(.redirect)
            let moved = await Self.refusal(core, quote, at: Self.early.addingTimeInterval(250))
            #expect(moved?.code == "CollateralFetchFailed", "\(String(describing: moved))")
            #expect(moved?.message.contains("answered HTTP 302") == true, "\(String(describing: moved))")
            #expect(moved?.message.contains("a redirect to \"/") == true, "\(String(describing: moved))")

            pccs.setMode(.normal)
            var big = FakePCCS.Answer(body: Array(repeating: UInt8(ascii: " "), count: 16 << 10))
            big.body += Array("{}".utf8)
            pccs.set(Self.sgxPaths[0], big)
            let oversize = await Self.refusal(core, quote, at: Self.early.addingTimeInterval(200))
            #expect(oversize?.code == "CollateralFetchFailed", "\(String(describing: oversize))")
            #expect(oversize?.message.contains("at most 8192 bytes") == true, "\(String(describing: oversize))")
        }
    }

    /// A PCCS that stalls (an hour) is cut off by the fetch's 2 s timeout: refused by name, having waited at least the
    /// timeout. What cut it off is read from the refusal, not from a stopwatch: the fetch's deadline
    /// (`deadlineExceeded`), not the client's 30 s read timeout, nor the PCCS answering. How long that takes is not
    /// asserted: under the whole suite on two cores the 2 s deadline was seen to fire after 48 s.
    @Test func aStallingPCCSIsCutOffAtTheTimeout() async throws {
        let quote = try RealQuote.sgx()
        try await Self.withPCCS(settings: Settings(timeout: .seconds(2))) { pccs, core, _ in
            pccs.setMode(.stall(.seconds(3600)))
            let started = ContinuousClock.now
            let stalled = await Self.refusal(core, quote, at: Self.early)
            let waited = ContinuousClock.now - started
            #expect(stalled?.code == "CollateralFetchFailed", "\(String(describing: stalled))")
            #expect(stalled?.message.contains("timeout 2") == true, "\(String(describing: stalled))")
            #expect(stalled?.message.contains("deadlineExceeded") == true, "\(String(describing: stalled))")
            #expect(waited >= .milliseconds(1900), "refused after \(waited), before the timeout")
            #expect(pccs.total <= 1, "retried a stalled fetch: \(pccs.counts)")
        }
    }

    /// Answers that are collateral, but not what was asked for: another FMSPC, the TDX QE identity for SGX, no
    /// issuer chain header.
    @Test func wrongAnswersAreRefusedByName() async throws {
        let quote = try RealQuote.sgx()
        let tdx = FakePCCS()
        try tdx.serve(bundle: "tdx/phala-dcap-qvl/tdx_quote_collateral.json", tee: "tdx")
        try await Self.withPCCS { pccs, core, _ in
            let tdxTCB = try #require(tdx.state.withLock { $0.answers["/tdx/certification/v4/tcb?fmspc=B0C06F000000"] })
            pccs.set(Self.sgxPaths[0], tdxTCB)
            let other = await Self.refusal(core, quote, at: Self.early.addingTimeInterval(300))
            #expect(other?.code == "CollateralFetchFailed", "\(String(describing: other))")
            #expect(other?.message.contains("the TDX TCB info for FMSPC b0c06f000000") == true)

            try pccs.serve(bundle: "sgx/phala-dcap-qvl/sgx_quote_collateral.json", tee: "sgx")
            let tdxQE = try #require(tdx.state.withLock { $0.answers["/tdx/certification/v4/qe/identity"] })
            pccs.set(Self.sgxPaths[1], tdxQE)
            let qe = await Self.refusal(core, quote, at: Self.early.addingTimeInterval(400))
            #expect(qe?.code == "CollateralFetchFailed", "\(String(describing: qe))")
            #expect(qe?.message.contains("answered the TD_QE identity") == true, "\(String(describing: qe))")

            try pccs.serve(bundle: "sgx/phala-dcap-qvl/sgx_quote_collateral.json", tee: "sgx")
            var bare = try #require(pccs.state.withLock { $0.answers[Self.sgxPaths[2]] })
            bare.headers = []
            pccs.set(Self.sgxPaths[2], bare)
            let headerless = await Self.refusal(core, quote, at: Self.early.addingTimeInterval(500))
            #expect(headerless?.code == "CollateralFetchFailed", "\(String(describing: headerless))")
            #expect(headerless?.message.contains("without the SGX-PCK-CRL-Issuer-Chain header") == true)
        }
    }

    /// An FMSPC the PCCS does not know (404): no collateral, refused; with the operator's opt-in, chain-only.
    @Test func unknownFMSPCIsRefusedUnlessChainOnly() async throws {
        let quote = try RealQuote.tdx()
        try await Self.withPCCS { _, core, _ in
            let error = await CollateralServiceTests.refusal {
                try await core.attest(type: .tdxVm, request: .init(evidence: quote.evidence), at: quote.time)
            }
            #expect(error?.code == "CollateralUnavailable", "\(String(describing: error))")
            #expect(error?.message.contains("b0c06f000000") == true)
        }
        try await Self.withPCCS(settings: Settings(allowChainOnly: true)) { _, core, _ in
            let token = try await core.attest(type: .tdxVm, request: .init(evidence: quote.evidence), at: quote.time)
            #expect(try await Self.tcbStatus(token, core, at: quote.time) == .string("NotChecked"))
        }
    }

    /// SGX and TDX from one PCCS: each TEE's TCB info and QE identity, the PCK CRL of each CA.
    @Test func sgxAndTDXFromOnePCCS() async throws {
        try await Self.withPCCS(bundles: [
            ("sgx/phala-dcap-qvl/sgx_quote_collateral.json", "sgx"),
            ("tdx/phala-dcap-qvl/tdx_quote_collateral.json", "tdx"),
        ]) { pccs, core, _ in
            for quote in try RealQuote.all() {
                let token = try await core.attest(
                    type: quote.type,
                    request: .init(evidence: quote.evidence),
                    at: quote.time
                )
                #expect(try await Self.tcbStatus(token, core, at: quote.time) == .string(quote.expectedStatus))
            }
            #expect(pccs.counts["/tdx/certification/v4/qe/identity"] == 1)
            #expect(pccs.counts["/sgx/certification/v4/pckcrl?ca=platform&encoding=der"] == 1)
            #expect(pccs.counts["/sgx/certification/v4/rootcacrl"] == 1)
        }
    }

    /// go-tdx-guest's PCS response files, served as they are (v3 header name for the TCB info chain): they are
    /// fetched and checked, and its test quote fails where dcap-qvl fails it, at the TCB level — after every
    /// collateral signature and the QE identity passed.
    @Test func goTDXGuestPCSFilesAsServed() async throws {
        let bytes = try Vectors.bytes("tdx/google-go-tdx-guest/tdx_prod_quote_SPR_E4.dat")
        let time = Date(timeIntervalSince1970: 1_688_173_200)
        try await Self.withPCCS(bundles: []) { pccs, core, _ in
            try pccs.serveGoTDXGuest()
            let error = await CollateralServiceTests.refusal {
                try await core.attest(type: .tdxVm, request: .init(evidence: Array(bytes.prefix(4935))), at: time)
            }
            #expect(error?.code == "InvalidEvidence", "\(String(describing: error))")
            #expect(error?.message.contains("TCB level") == true, "\(String(describing: error))")
            #expect(pccs.total == 4, "\(pccs.counts)")
        }
    }

    /// Over HTTP, with the service's clock at the vectors' time: MAA's request shape, a token with the TCB status,
    /// and a refusal in MAA's error shape once the clock passes the collateral's `nextUpdate` with the PCCS down.
    @Test func overHTTPWithTheServiceClock() async throws {
        let quote = try RealQuote.sgx()
        let now = Mutex(Self.early)
        try await Self.withPCCS(settings: Settings(clock: { now.withLock { $0 } })) {
            pccs,
            core,
            _ in
            let application = Application(router: AttestationServer.router(core: core))
            try await application.test(.router) { client in
                let body = ByteBuffer(string: "{\"quote\":\"\(Base64URL.encode(quote.evidence))\"}")
                let response = try await client.execute(uri: "/attest/SgxEnclave", method: .post, body: body)
                #expect(response.status == .ok, "\(response.text)")
                let token = try #require(response.json["token"] as? String)
                #expect(try await Self.tcbStatus(token, core, at: Self.early) == .string(quote.expectedStatus))
                #expect(pccs.total == 4)

                pccs.setMode(.unavailable)
                now.withLock { $0 = Self.expired }
                let refused = try await client.execute(uri: "/attest/SgxEnclave", method: .post, body: body)
                #expect(refused.status == .serviceUnavailable, "\(refused.text)")
                #expect(refused.errorCode == "CollateralFetchFailed", "\(refused.text)")
            }
        }
    }

    /// A quote that does not verify (here a real one with a byte of its report changed: its PCK chain and FMSPC are
    /// genuine) is refused without the PCCS being asked: anyone can put any FMSPC in a quote of their own.
    @Test func aForgedQuoteDoesNotMakeTheServiceFetch() async throws {
        var forged = try RealQuote.sgx().evidence
        forged[48 + 320] ^= 0x01  // report data, covered by the quote's signature
        try await Self.withPCCS { pccs, core, _ in
            let error = await CollateralServiceTests.refusal {
                try await core.attest(type: .sgxEnclave, request: .init(evidence: forged), at: Self.early)
            }
            #expect(error?.code == "InvalidEvidence", "\(String(describing: error))")
            #expect(pccs.total == 0, "\(pccs.counts)")
        }
    }

    @Test func pccsURLMustBeHTTP() async throws {
        let directory = NSTemporaryDirectory() + "enclavekit-pccs-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try await SQLiteServiceStore.open(directory: directory)
        defer { Task { try? await store.close() } }
        for url in ["file:///etc/passwd", "pccs.example", "https://", "https://pccs.example/?x=1"] {
            let error = #expect(throws: ServiceError.self) {
                try PCCSCollateralSource(options: .init(baseURL: url), store: store)
            }
            #expect(error?.code == "InvalidPCCSURL", "\(url)")
        }
    }
}
