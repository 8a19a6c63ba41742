public import Attestation
internal import AttestationAPI
internal import Crypto
internal import EnclaveCore
public import Foundation
public import Logging
internal import Synchronization
public import X509

/// The attestation service without its transport: verifies evidence, binds runtime data and challenges, evaluates
/// the policy, signs tokens, manages policies. ``AttestationServer`` puts it on HTTP.
public final class AttestationServiceCore: Sendable {
    /// How the service is set up.
    public struct Configuration: Sendable {
        /// The `iss` of tokens and the base of `jwks_uri` (`http://host:port`).
        public var issuer: String
        /// Accept `SimulatedEnclave` evidence (chained to `simulatedAnchor`).
        public var allowSimulated = false
        /// The simulated platform's root CA, for `SimulatedEnclave`.
        public var simulatedAnchor: Certificate?
        /// Collateral for simulated quotes at a time (the simulated platform issues it).
        public var simulatedCollateral: (@Sendable (Date) throws -> Collateral)?
        /// Intel's roots for real SGX and TDX quotes.
        public var intelAnchors: [Certificate] = [IntelRoots.sgxRootCA]
        /// Collateral for real quotes by lower-case FMSPC (`--collateral FMSPC=FILE|DIR`), looked up first.
        public var collateral: [String: Collateral] = [:]
        /// Where collateral for FMSPCs missing from ``collateral`` comes from (a PCCS: `--pccs URL`).
        public var collateralSource: (any CollateralSource)?
        /// The service's clock: the time evidence and collateral are checked at when a request does not give one
        /// (tests set the vectors' times).
        public var clock: @Sendable () -> Date = { Date() }
        /// Real SGX and TDX quotes without collateral are refused (`CollateralUnavailable`) unless this is set
        /// (`--allow-chain-only`): then they are verified up to the PCK chain, the signatures and Intel's QE
        /// signer and product ID, and their token says `x-enclavekit-tcb-status: NotChecked`. The same setting as
        /// `EvidencePolicy.allowMissingTCBStatus` in ``evidencePolicy``.
        public var allowChainOnly: Bool {
            get { evidencePolicy.allowMissingTCBStatus }
            set { evidencePolicy.allowMissingTCBStatus = newValue }
        }
        /// Certificates whose keys may sign policy changes; then only signed requests naming the attestation type,
        /// the operation and a fresh version change policies.
        public var policySigners: [Certificate] = []
        /// Refuse signed policy and certificate requests in MAA's form (no `x-enclavekit-policy-version`), which
        /// are otherwise accepted once each: then every signed request must name this service, its type, its
        /// operation and a new version.
        public var requireVersionedPolicyRequests = false
        /// Without policy signers: the administrator's token, which policy changes must present
        /// (`Authorization: Bearer …`). Without either, policies cannot be changed at all.
        public var adminCredential: AdminCredential?
        /// What verified evidence must satisfy before any attestation policy is consulted (fail closed: no
        /// revoked, out-of-date or unevaluated TCB, no debug TEE, SEV-SNP VMPL 0, … as `EvidencePolicy`'s
        /// defaults say). Simulated evidence is governed by ``allowSimulated`` instead.
        public var evidencePolicy = EvidencePolicy()
        /// The kind of token signing key: ES256 by default here; `enclave serve attestation` defaults to RS256,
        /// which Microsoft's Azure Attestation clients need.
        public var tokenKeyType: TokenSigner.KeyType = .ec
        /// How long a token is valid, in seconds (`exp` − `iat`); 8 hours by default.
        public var tokenLifetime: TimeInterval = 8 * 3600
        /// How long a challenge from `GET /challenge` may be used, in seconds; 5 minutes by default. Each is accepted
        /// once.
        public var challengeLifetime: TimeInterval = 300
        /// The most draft policies (`draftPolicyForAttestation`, sent without authentication) evaluated at once;
        /// one more is refused with 429 `TooManyDraftPolicyEvaluations`. 0 refuses every draft.
        public var maxConcurrentDraftEvaluations = 1
        /// The longest draft policy accepted, in bytes (a stored policy may be up to 256 KiB).
        public var maxDraftPolicyLength = 64 << 10
        /// How long one policy evaluation may run (seconds) before it is stopped with
        /// `PolicyEvaluationLimitExceeded`, whatever its step count (``AttestationPolicy/maxEvaluationSteps``).
        public var policyEvaluationTimeout: TimeInterval = 2
        /// How long a management request may use the administrator token digest read from the store before reading
        /// it again (a rotation on another instance takes effect here within this time).
        public var adminCredentialRefresh: TimeInterval = 2
        /// How long audit records are kept.
        public var auditRetention: TimeInterval = 90 * 86400
        /// The most audit records kept (the newest).
        public var maxAuditRecords = 10_000_000

        /// A fail-closed configuration for `issuer`: no simulated evidence, no chain-only quotes, Intel's roots, no
        /// collateral source, no way to change policies until ``policySigners`` or ``adminCredential`` is set.
        public init(issuer: String) { self.issuer = issuer }
    }

    /// An attestation request in MAA's shape.
    public struct AttestRequest: Sendable {
        /// The evidence as posted (a quote, or for `SevSnpVm` a JSON document), decoded from base64url.
        public var evidence: [UInt8]
        /// Runtime data and whether its `dataType` is `JSON`: its SHA-256 must be the first 32 bytes of the evidence's
        /// report data. A challenge in it (`{"challenge": …}`) is consumed.
        public var runtimeData: (data: [UInt8], json: Bool)?
        /// Init-time data and whether its `dataType` is `JSON`: its SHA-256 (or SHA-384) must be the evidence's SGX
        /// CONFIGID, TDX MRCONFIGID or SEV-SNP HOST_DATA.
        public var initTimeData: (data: [UInt8], json: Bool)?
        /// Copied into the token's `nonce` claim. Not bound to the evidence: it correlates, it proves no freshness.
        public var nonce: String?
        /// A policy to evaluate instead of the stored one (MAA's `draftPolicyForAttestation`). The answer is then an
        /// unsigned token (`alg: none`) that shows the outcome and proves nothing; a challenge is checked, not
        /// consumed.
        public var draftPolicy: String?

        /// A request.
        ///
        /// - Parameters:
        ///   - evidence: The evidence bytes.
        ///   - runtimeData: Runtime data and whether it is JSON.
        ///   - initTimeData: Init-time data and whether it is JSON.
        ///   - nonce: A nonce to echo in the token.
        ///   - draftPolicy: A policy to try instead of the stored one.
        public init(
            evidence: [UInt8],
            runtimeData: (data: [UInt8], json: Bool)? = nil,
            initTimeData: (data: [UInt8], json: Bool)? = nil,
            nonce: String? = nil,
            draftPolicy: String? = nil
        ) {
            self.evidence = evidence
            self.runtimeData = runtimeData
            self.initTimeData = initTimeData
            self.nonce = nonce
            self.draftPolicy = draftPolicy
        }
    }

    /// The configuration the service was created with.
    public let configuration: Configuration
    /// Where the service keeps its state (signing key, policies, challenges, audit, collateral).
    public let store: any ServiceStore
    /// The token signing key, shared through ``store`` by every instance.
    public let signer: TokenSigner
    let logger: Logger
    let metrics: ServiceMetrics
    /// Per-platform verification work (PCK chain, collateral, QE report), reused while valid.
    let verificationCache = VerificationCache()
    /// Parsed policies by hash (bounded), so that a stored policy is parsed once, not on every request.
    let policyCache = Mutex<[String: AttestationPolicy]>([:])
    /// The hashes of stored policies found not to parse and already logged, so that each is logged once, not on
    /// every request (see ``checkStoredPolicies()``).
    let reportedInvalidPolicies = Mutex<Set<String>>([])
    /// When the audit table was last pruned.
    let lastAuditPrune = Mutex<Date?>(nil)
    /// The administrator token digest last read from the store, and when.
    let adminDigestCache = Mutex<(credential: AdminCredential?, read: ContinuousClock.Instant)?>(nil)
    /// The issuer set once the listening port was known (``useIssuer(_:)``), overriding the configured one.
    let boundIssuer = Mutex<String?>(nil)
    /// The draft policies being evaluated (at most ``Configuration/maxConcurrentDraftEvaluations``).
    let draftEvaluations: DraftEvaluationLimiter
    /// The key that authenticates challenges (shared through the store by every instance).
    let challengeKey: SymmetricKey
    /// The longest audit `detail` kept (bytes): refusal messages quote input, which must not fill the disk.
    static let maxAuditDetail = 1024

    /// Open the service over `store`, creating the signing key on first start.
    public init(
        configuration: Configuration,
        store: any ServiceStore,
        logger: Logger = Logger(label: "enclavekit.attestation")
    ) async throws {
        self.configuration = configuration
        self.store = store
        self.logger = logger
        self.metrics = ServiceMetrics()
        self.draftEvaluations = DraftEvaluationLimiter(limit: configuration.maxConcurrentDraftEvaluations)
        self.signer = try await TokenSigner.load(
            from: store,
            type: configuration.tokenKeyType,
            issuer: configuration.issuer
        )
        let key = try await store.challengeKey(orInsert: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
        self.challengeKey = SymmetricKey(data: key)
        _ = try await checkStoredPolicies()
    }

    /// The `iss` of tokens and the base of `jwks_uri`: ``Configuration/issuer``, or the one given to
    /// ``useIssuer(_:)``.
    public var issuer: String { boundIssuer.withLock { $0 } ?? configuration.issuer }

    /// Name tokens' issuer `issuer` from now on: for a service started on port 0, whose URL is known only once it
    /// listens (`http://127.0.0.1:0` would name no service).
    public func useIssuer(_ issuer: String) {
        boundIssuer.withLock { $0 = issuer }
    }

    // MARK: Challenges

    /// A fresh single-use challenge and its expiry, stateless: base64url of 16 random bytes ‖ the expiry (seconds
    /// since 1970, 8 bytes big-endian) ‖ HMAC-SHA256 of both under the service's challenge key. Issuing one stores
    /// nothing, so anonymous clients cannot fill a table; the service checks the MAC and expiry when the challenge
    /// comes back, and stores only challenges that were used (until they expire) to refuse a second use.
    public func challenge(at time: Date = Date()) async throws -> (nonce: String, expires: Date) {
        let random = SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) }
        let expiry = UInt64(max(0, time.addingTimeInterval(configuration.challengeLifetime).timeIntervalSince1970))
        let body = random + Self.bigEndian(expiry)
        let mac = Array(HMAC<SHA256>.authenticationCode(for: body, using: challengeKey))
        return (Base64URL.encode(body + mac), Date(timeIntervalSince1970: TimeInterval(expiry)))
    }

    /// The expiry of a challenge this service (or another sharing its store) issued and that has not expired at
    /// `time`; nil for anything else. It says nothing of whether the challenge was used.
    func challengeExpiry(_ challenge: String, at time: Date) -> Date? {
        guard challenge.utf8.count <= 128, let bytes = Base64URL.decode(challenge), bytes.count == 56 else {
            return nil
        }
        let body = Array(bytes[0..<24])
        guard HMAC<SHA256>.isValidAuthenticationCode(Array(bytes[24...]), authenticating: body, using: challengeKey)
        else { return nil }
        let expiry = body[16..<24].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard expiry < UInt64(1) << 53 else { return nil }
        let expires = Date(timeIntervalSince1970: TimeInterval(expiry))
        return time <= expires ? expires : nil
    }

    static func bigEndian(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) }
    }

    /// At most ``maxAuditDetail`` bytes of `detail` (cut on a character boundary, marked as cut).
    static func cappedAuditDetail(_ detail: String) -> String {
        guard detail.utf8.count > maxAuditDetail else { return detail }
        var cut = Substring(detail).prefix(maxAuditDetail - 16)
        while cut.utf8.count > maxAuditDetail - 16 { cut = cut.dropLast() }
        return cut + "…(truncated)"
    }

    // MARK: Attestation

    /// Verify, bind, evaluate, sign. Every refusal is a ``ServiceError`` naming what failed; every decision is
    /// audited.
    public func attest(type: AttestationType, request: AttestRequest, at requested: Date? = nil) async throws -> String
    {
        let time = requested ?? configuration.clock()
        let started = ContinuousClock.now
        await pruneAuditIfDue(at: time)
        do {
            let token = try await attestUnaudited(type: type, request: request, at: time)
            metrics.record(type: type, result: "permitted", since: started)
            return token
        } catch let error as ServiceError {
            metrics.record(type: type, result: error.status == 500 ? "error" : "refused", since: started)
            // The message is cut before it is quoted, so the detail stays JSON and bounded.
            let message = String(error.message.prefix(Self.maxAuditDetail / 2))
            var detail: [String: TokenValue] = ["code": .string(error.code), "message": .string(message)]
            if request.draftPolicy != nil { detail["draft"] = .bool(true) }
            try? await store.appendAudit(
                AuditRecord(
                    time: time,
                    type: type.rawValue,
                    result: "refused",
                    detail: Self.cappedAuditDetail(TokenValue.object(detail).jsonText),
                    policyHash: ""
                )
            )
            logger.info("attestation refused", metadata: ["type": "\(type.rawValue)", "code": "\(error.code)"])
            throw error
        }
    }

    private func attestUnaudited(type: AttestationType, request: AttestRequest, at time: Date) async throws -> String {
        let claims = try await verifyEvidence(type: type, evidence: request.evidence, at: time)
        if claims.simulated && !(type == .simulatedEnclave && configuration.allowSimulated) {
            throw ServiceError.badRequest(
                "SimulatedEvidenceNotAllowed",
                "the evidence comes from a simulated platform, which this service does not accept"
            )
        }
        var token = EvidenceClaims.tokenClaims(claims, type: type)
        token.merge(try collateralClaims(claims)) { _, stated in stated }

        try checkEvidencePolicy(claims, type: type)

        // Runtime data: its SHA-256 must lead the evidence's report data; a challenge in it is consumed.
        if let runtime = request.runtimeData {
            try await bindRuntimeData(
                runtime,
                claims: claims,
                into: &token,
                at: time,
                consumingChallenge: request.draftPolicy == nil
            )
        }
        // Init-time data: only what the evidence measured at launch (CONFIGID, MRCONFIGID, HOST_DATA).
        if let initTime = request.initTimeData {
            try bindInitTimeData(initTime, claims: claims, into: &token)
        }

        // The policy, parsed once per text (by hash).
        let policyText: String
        let policyHash: String
        if let draft = request.draftPolicy {
            policyText = draft
            policyHash = Self.hash(draft)
        } else if let stored = try await store.policy(type: type.rawValue) {
            policyText = stored.text
            policyHash = Self.hash(stored.text)
        } else {
            policyText = AttestationPolicy.defaultText
            policyHash = Self.hash(policyText)
        }
        let decision: AttestationPolicy.Decision
        if request.draftPolicy != nil {
            decision = try await evaluateDraft(policyText, claims: EvidenceClaims.policyClaims(token))
        } else {
            let policy = try parsedPolicy(policyText, hash: policyHash, type: type)
            decision = await Self.evaluate(
                policy,
                EvidenceClaims.policyClaims(token),
                timeout: configuration.policyEvaluationTimeout
            )
        }
        if decision.limitExceeded {
            throw ServiceError.badRequest("PolicyEvaluationLimitExceeded", decision.reason ?? "")
        }
        guard decision.permitted else {
            throw ServiceError.badRequest(
                "PolicyEvaluationError",
                "the policy refused the evidence: \(decision.reason ?? "")"
            )
        }
        for claim in decision.issued {
            guard token[claim.type] == nil, !Self.reserved.contains(claim.type), !claim.type.hasPrefix("x-ms-"),
                !claim.type.hasPrefix("x-enclavekit-")
            else {
                throw ServiceError.badRequest(
                    "InvalidPolicy",
                    "the policy may not issue the reserved claim \(claim.type)"
                )
            }
            let value: TokenValue =
                switch claim.value {
                case .string(let text): .string(text)
                case .integer(let number): .integer(number)
                case .bool(let flag): .bool(flag)
                }
            token[claim.type] = value
        }

        // The standard claims.
        let now = Int(time.timeIntervalSince1970)
        token["iss"] = .string(issuer)
        token["iat"] = .integer(now)
        token["nbf"] = .integer(now)
        token["exp"] = .integer(now + Int(configuration.tokenLifetime))
        token["jti"] = .string(UUID().uuidString.lowercased())
        token["x-ms-ver"] = .string("1.0")
        token["x-ms-policy-hash"] = .string(policyHash)
        if let nonce = request.nonce { token["nonce"] = .string(nonce) }

        try? await store.appendAudit(
            AuditRecord(
                time: time,
                type: type.rawValue,
                // A draft decides nothing: its row says so.
                result: request.draftPolicy == nil ? "permitted" : "draft",
                detail: Self.cappedAuditDetail(Self.auditDetail(token)),
                policyHash: policyHash
            )
        )
        if request.draftPolicy != nil {
            // MAA answers a draft policy with an unsigned token: it shows the outcome and is good for nothing else.
            let header = Base64URL.encode(
                Array(TokenValue.object(["alg": .string("none"), "typ": .string("JWT")]).jsonText.utf8)
            )
            let payload = Base64URL.encode(Array(TokenValue.object(token).description.utf8))
            return header + "." + payload + "."
        }
        return try await signer.sign(token, jku: issuer + "/certs")
    }

    static let reserved: Set<String> = ["iss", "iat", "nbf", "exp", "jti", "nonce", "aud", "sub"]

    /// MAA's `x-ms-policy-hash`: BASE64URL(SHA-256(BASE64URL(UTF-8 policy text))) (Azure Attestation's claim sets;
    /// checked against tokens of a live MAA instance).
    static func hash(_ text: String) -> String {
        Base64URL.encode(Array(SHA256.hash(data: Array(Base64URL.encode(Array(text.utf8)).utf8))))
    }

    static func auditDetail(_ token: [String: TokenValue]) -> String {
        let keys = [
            "x-ms-attestation-type", "x-ms-sgx-mrenclave", "x-ms-sgx-mrsigner", "tdx_mrtd",
            "x-ms-sevsnpvm-launchmeasurement", "x-enclavekit-tcb-status", "x-enclavekit-simulated",
        ]
        var members: [String: TokenValue] = [:]
        for key in keys { if let value = token[key] { members[key] = value } }
        return TokenValue.object(members).description
    }
}
