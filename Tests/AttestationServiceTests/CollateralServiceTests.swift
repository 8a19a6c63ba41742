import Attestation
import AttestationClient
import AttestationService
import Foundation
import Testing

/// Real SGX and TDX quotes need collateral: without it (no collateral at all, an FMSPC missing from the map) the
/// service refuses them by name, unless its operator opted in to chain-only verification, and then the token says
/// that TCB and revocation were not checked. With collateral the token carries the TCB status.
@Suite("Attestation service: collateral for real quotes")
struct CollateralServiceTests {
    /// A real quote, the route it goes to, its collateral and the time its collateral is valid at (MANIFEST).
    struct RealQuote: Sendable, CustomTestStringConvertible {
        var name: String
        var type: AttestationType
        var evidence: [UInt8]
        var collateralPath: String
        var fmspc: String
        var time: Date
        var expectedStatus: String
        var testDescription: String { name }

        static func sgx() throws -> RealQuote {
            RealQuote(
                name: "SGX",
                type: .sgxEnclave,
                evidence: try Vectors.bytes("sgx/phala-dcap-qvl/sgx_quote"),
                collateralPath: "sgx/phala-dcap-qvl/sgx_quote_collateral.json",
                fmspc: "00a067110000",
                time: Date(timeIntervalSince1970: 1_752_919_277),
                expectedStatus: "ConfigurationAndSWHardeningNeeded"
            )
        }

        static func openEnclave() throws -> RealQuote {
            var quote = try sgx()
            let header: [UInt8] =
                [1, 0, 0, 0, 2, 0, 0, 0] + withUnsafeBytes(of: UInt64(quote.evidence.count).littleEndian, Array.init)
            quote.name = "OpenEnclave"
            quote.type = .openEnclave
            quote.evidence = header + quote.evidence
            return quote
        }

        static func tdx() throws -> RealQuote {
            RealQuote(
                name: "TDX",
                type: .tdxVm,
                evidence: try Vectors.bytes("tdx/phala-dcap-qvl/tdx_quote"),
                collateralPath: "tdx/phala-dcap-qvl/tdx_quote_collateral.json",
                fmspc: "b0c06f000000",
                time: Date(timeIntervalSince1970: 1_752_919_234),
                expectedStatus: "UpToDate"
            )
        }

        static func all() throws -> [RealQuote] { [try sgx(), try openEnclave(), try tdx()] }

        func collateral() throws -> Collateral { try Collateral(dcapQVLJSON: Vectors.bytes(collateralPath)) }
    }

    /// A configuration with `configure` applied.
    static func configuration(
        _ configure: (inout AttestationServiceCore.Configuration) throws -> Void = { _ in }
    ) rethrows -> AttestationServiceCore.Configuration {
        var configuration = AttestationServiceCore.Configuration(issuer: "http://attestation.test")
        try configure(&configuration)
        return configuration
    }

    /// A service with `configuration` on a fresh SQLite store.
    static func withCore(
        _ configuration: AttestationServiceCore.Configuration,
        _ body: (AttestationServiceCore) async throws -> Void
    ) async throws {
        let directory = NSTemporaryDirectory() + "enclavekit-collateral-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try await SQLiteServiceStore.open(directory: directory)
        let core = try await AttestationServiceCore(configuration: configuration, store: store)
        do {
            try await body(core)
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }

    /// The token's claims, verified as a relying party at the quote's time.
    static func claims(
        _ token: String,
        core: AttestationServiceCore,
        at time: Date
    ) async throws
        -> AttestationTokenClaims
    {
        let verifier = try await TokenVerifier(jwks: core.signer.jwksJSON, issuer: "http://attestation.test")
        return try await verifier.verify(token, at: time)
    }

    static func refusal(_ body: () async throws -> String) async -> ServiceError? {
        do {
            let token = try await body()
            Issue.record("a token was issued: \(token.prefix(40))…")
            return nil
        } catch let error as ServiceError {
            return error
        } catch {
            Issue.record("not a ServiceError: \(error)")
            return nil
        }
    }

    /// The attack: a real quote and no collateral at all. Before, the service verified only the PCK chain and the
    /// signatures and issued a token without a TCB status.
    @Test(arguments: try RealQuote.all())
    func realQuoteWithoutCollateralIsRefused(_ quote: RealQuote) async throws {
        try await Self.withCore(Self.configuration()) { core in
            let error = await Self.refusal {
                try await core.attest(type: quote.type, request: .init(evidence: quote.evidence), at: quote.time)
            }
            #expect(error?.code == "CollateralUnavailable", "\(String(describing: error))")
            #expect(error?.message.contains(quote.fmspc) == true, "\(String(describing: error))")
            let audit = try await core.store.auditRecords(limit: 1)
            #expect(audit.first?.result == "refused" && audit.first?.detail.contains("CollateralUnavailable") == true)
        }
    }

    /// Collateral for other platforms only: the quote's FMSPC is missing from the map.
    @Test(arguments: try RealQuote.all())
    func fmspcMissingFromTheMapIsRefused(_ quote: RealQuote) async throws {
        let other = try (quote.type == .tdxVm ? RealQuote.sgx() : RealQuote.tdx())
        try await Self.withCore(try Self.configuration { $0.collateral = [other.fmspc: try other.collateral()] }) {
            core in
            let error = await Self.refusal {
                try await core.attest(type: quote.type, request: .init(evidence: quote.evidence), at: quote.time)
            }
            #expect(error?.code == "CollateralUnavailable", "\(String(describing: error))")
            #expect(error?.message.contains(quote.fmspc) == true, "\(String(describing: error))")
        }
    }

    /// With the quote's collateral the token carries Intel's TCB status.
    @Test(arguments: try RealQuote.all())
    func collateralGivesATCBStatus(_ quote: RealQuote) async throws {
        try await Self.withCore(try Self.configuration { $0.collateral = [quote.fmspc: try quote.collateral()] }) {
            core in
            let token = try await core.attest(
                type: quote.type,
                request: .init(evidence: quote.evidence),
                at: quote.time
            )
            let claims = try await Self.claims(token, core: core, at: quote.time)
            #expect(claims["x-enclavekit-tcb-status"] == .string(quote.expectedStatus))
            #expect(claims["attester_tcb_status"] == .string(quote.expectedStatus))
            #expect(claims["x-enclavekit-collateral"] == .string("checked"))
            #expect(claims["x-enclavekit-simulated"] == .bool(false))
        }
    }

    /// The operator's explicit opt-in: chain-only verification, and a token that says TCB and revocation were not
    /// checked (its TCB status is `NotChecked`, which no policy that asks for `UpToDate` accepts).
    @Test(arguments: try RealQuote.all())
    func chainOnlyOptInGivesATokenThatSaysSo(_ quote: RealQuote) async throws {
        try await Self.withCore(Self.configuration { $0.allowChainOnly = true }) { core in
            let token = try await core.attest(
                type: quote.type,
                request: .init(evidence: quote.evidence),
                at: quote.time
            )
            let claims = try await Self.claims(token, core: core, at: quote.time)
            #expect(claims["x-enclavekit-tcb-status"] == .string("NotChecked"))
            #expect(claims["attester_tcb_status"] == .string("NotChecked"))
            #expect(claims["x-enclavekit-collateral"] == .string("chain-only: TCB status and revocation not checked"))
            #expect(claims["x-enclavekit-simulated"] == .bool(false))

            // A policy that asks for an up-to-date TCB refuses it.
            let policy = """
                version=1.0;
                authorizationrules { c:[type=="attester_tcb_status", value=="UpToDate"] => permit(); };
                """
            let error = await Self.refusal {
                try await core.attest(
                    type: quote.type,
                    request: .init(evidence: quote.evidence, draftPolicy: policy),
                    at: quote.time
                )
            }
            #expect(error?.code == "PolicyEvaluationError")
        }
    }

    /// The opt-in does not replace collateral that is there: the quote's own collateral still gives its status.
    @Test func chainOnlyOptInStillUsesCollateralWhenPresent() async throws {
        let quote = try RealQuote.sgx()
        try await Self.withCore(
            try Self.configuration {
                $0.allowChainOnly = true
                $0.collateral = [quote.fmspc: try quote.collateral()]
            }
        ) { core in
            let token = try await core.attest(
                type: quote.type,
                request: .init(evidence: quote.evidence),
                at: quote.time
            )
            let claims = try await Self.claims(token, core: core, at: quote.time)
            #expect(claims["x-enclavekit-tcb-status"] == .string(quote.expectedStatus))
        }
    }

    /// Expired collateral is not "no collateral": with the opt-in the service still refuses, it does not fall back.
    @Test func expiredCollateralIsRefusedEvenWithTheOptIn() async throws {
        let quote = try RealQuote.sgx()
        try await Self.withCore(
            try Self.configuration {
                $0.allowChainOnly = true
                $0.collateral = [quote.fmspc: try quote.collateral()]
            }
        ) { core in
            let error = await Self.refusal {
                try await core.attest(
                    type: quote.type,
                    request: .init(evidence: quote.evidence),
                    at: quote.time.addingTimeInterval(86400 * 60)
                )
            }
            #expect(error?.code == "InvalidEvidence", "\(String(describing: error))")
        }
    }
}

extension CollateralServiceTests {
    /// Azure's TDX vTPM evidence carries a TD quote: it needs collateral as any TDX quote does.
    @Test func azureTDXVTPMEvidenceWithoutCollateralIsRefused() async throws {
        let evidence = try Vectors.bytes("azure-vtpm/trustee-az-tdx-vtpm/evidence-v1.json")
        let time = Date(timeIntervalSince1970: 1_752_919_234)
        try await Self.withCore(Self.configuration()) { core in
            let error = await Self.refusal {
                try await core.attest(type: .tdxVm, request: .init(evidence: evidence), at: time)
            }
            #expect(error?.code == "CollateralUnavailable", "\(String(describing: error))")
            #expect(error?.message.contains("00806f050000") == true, "\(String(describing: error))")
        }
    }

    /// The collateral cache round-trips through SQLite: the newest copy of a key replaces the one there.
    @Test func sqliteCachesCollateralByKey() async throws {
        let directory = NSTemporaryDirectory() + "enclavekit-collateral-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try await SQLiteServiceStore.open(directory: directory)
        try await Self.cacheRoundTrip(store)
        try await store.close()
    }

    static func cacheRoundTrip(_ store: any ServiceStore) async throws {
        let key = "test/" + UUID().uuidString
        #expect(try await store.cachedCollateral(key: key) == nil)
        let first = CachedCollateral(
            body: Array(0...255),
            issuerChain: "-----BEGIN CERTIFICATE-----\n…",
            issued: Date(timeIntervalSince1970: 1_750_000_000),
            nextUpdate: Date(timeIntervalSince1970: 1_752_592_000),
            fetched: Date(timeIntervalSince1970: 1_750_000_100)
        )
        try await store.cacheCollateral(first, key: key)
        #expect(try await store.cachedCollateral(key: key) == first)
        var second = first
        second.body = Array("{\"tcbInfo\":{}}".utf8)
        second.fetched = Date(timeIntervalSince1970: 1_750_000_200)
        try await store.cacheCollateral(second, key: key)
        #expect(try await store.cachedCollateral(key: key) == second)
        #expect(try await store.cachedCollateral(key: key + "/other") == nil)
    }
}
