internal import Attestation
internal import AttestationAPI
internal import Crypto
internal import Dispatch
internal import EnclaveCore
internal import Foundation
internal import Synchronization

extension AttestationServiceCore {
    /// The most parsed policies kept.
    static let policyCacheSize = 64

    /// The service's fail-closed requirements on verified claims (``Configuration/evidencePolicy``), before any
    /// attestation policy: refused with `EvidencePolicyViolation` naming the requirement.
    func checkEvidencePolicy(_ claims: Claims, type: AttestationType) throws {
        var policy = configuration.evidencePolicy
        policy.allowSimulated = true  // simulated evidence is admitted or refused by `allowSimulated` alone
        do {
            try policy.check(claims)
        } catch {
            throw ServiceError.badRequest(
                "EvidencePolicyViolation",
                "the evidence does not meet the service's requirement \(error.requirement): \(error.reason)"
            )
        }
    }

    /// Runtime data: its SHA-256 must lead the evidence's report data. JSON runtime data becomes `x-ms-runtime`,
    /// binary `x-ms-sgx-ehd`. Whatever the declared type, bytes that are a JSON object with a `challenge` consume
    /// that challenge (so that evidence bound to a spent challenge is refused however it is presented), unless
    /// `consumingChallenge` is false (a draft policy request: the challenge is checked, not spent). JSON with a
    /// member named twice is refused (`DuplicateJSONKey`): parsers disagree on which one counts.
    func bindRuntimeData(
        _ runtime: (data: [UInt8], json: Bool),
        claims: Claims,
        into token: inout [String: TokenValue],
        at time: Date,
        consumingChallenge: Bool = true
    ) async throws {
        let digest = Array(SHA256.hash(data: runtime.data))
        guard claims.reportData.count >= 32, Array(claims.reportData.prefix(32)) == digest else {
            throw ServiceError.badRequest(
                "RuntimeDataNotBound",
                "SHA-256 of runtimeData.data is not the first 32 bytes of the evidence's report data"
            )
        }
        let parsed = try? JSONDecoder().decode(TokenValue.self, from: Data(runtime.data))
        if parsed != nil { _ = try StrictJSON(runtime.data, what: "the runtime data") }
        if runtime.json {
            guard let parsed, case .object = parsed else {
                throw ServiceError.badRequest("InvalidRuntimeData", "runtimeData of type JSON is not a JSON object")
            }
            token["x-ms-runtime"] = parsed
        } else {
            token["x-ms-sgx-ehd"] = .string(Base64URL.encode(runtime.data))
        }
        // A server challenge in the runtime data is bound by the evidence: it must be current and unused.
        if case .object(let members)? = parsed, let challenge = members["challenge"] {
            let nonce = challenge.stringValue
            let expires = nonce.flatMap { challengeExpiry($0, at: time) }
            var usable = expires != nil
            if let nonce, let expires, consumingChallenge {
                usable = try await store.markChallengeConsumed(nonce, expires: expires, at: time)
            }
            guard let nonce, usable else {
                throw ServiceError.badRequest(
                    "InvalidChallenge",
                    "the challenge in the runtime data is unknown, expired or already used"
                )
            }
            token["x-enclavekit-challenge"] = .string(nonce)
        }
    }

    /// Init-time data is vouched for only when the evidence measured it at launch: its SHA-256 (or SHA-384) must be
    /// SGX CONFIGID, TDX MRCONFIGID or SEV-SNP HOST_DATA (zero-padded). Anything else is refused
    /// (`InitTimeDataNotBound`): it never becomes a claim on the requester's word. JSON with a member named twice is
    /// refused (`DuplicateJSONKey`), as in runtime data.
    func bindInitTimeData(
        _ initTime: (data: [UInt8], json: Bool),
        claims: Claims,
        into token: inout [String: TokenValue]
    ) throws {
        let field: (name: String, bytes: [UInt8])? =
            if let sgx = claims.sgx {
                ("CONFIGID", sgx.configID)
            } else if let tdx = claims.tdx {
                ("MRCONFIGID", tdx.mrConfigID)
            } else if let snp = claims.sevSNP {
                ("HOST_DATA", snp.hostData)
            } else {
                nil
            }
        guard let field, Self.binds(initTime.data, field.bytes) else {
            throw ServiceError.badRequest(
                "InitTimeDataNotBound",
                field.map {
                    "the hash of initTimeData.data is not the evidence's \($0.name); the service vouches only for "
                        + "init-time data measured at launch"
                } ?? "this evidence measures no init-time data"
            )
        }
        // As runtime data: JSON with a member named twice is refused whatever the declared type (the service would
        // sign what Foundation kept, a relying party reading the JSON or the binary copy might keep the other).
        let parsed = try? JSONDecoder().decode(TokenValue.self, from: Data(initTime.data))
        if parsed != nil { _ = try StrictJSON(initTime.data, what: "the init-time data") }
        if initTime.json {
            guard let object = parsed, case .object = object else {
                throw ServiceError.badRequest("InvalidInitTimeData", "initTimeData of type JSON is not a JSON object")
            }
            token["x-ms-inittime"] = object
        } else {
            token["x-ms-inittime-data"] = .string(Base64URL.encode(initTime.data))
        }
    }

    /// Whether `field` is SHA-256 or SHA-384 of `data`, followed by zeros.
    static func binds(_ data: [UInt8], _ field: [UInt8]) -> Bool {
        for digest in [Array(SHA256.hash(data: data)), Array(SHA384.hash(data: data))] where field.count >= digest.count
        {
            if Array(field.prefix(digest.count)) == digest && field.dropFirst(digest.count).allSatisfy({ $0 == 0 }) {
                return true
            }
        }
        return false
    }

    /// Evaluate `policy` on a thread of its own, not on the concurrency pool that serves every other request (a
    /// policy at its step budget takes a noticeable time). Cancelling the request stops the evaluation, and so does
    /// `timeout` (seconds) running out: both end as ``AttestationPolicy/Decision/limitExceeded``.
    static func evaluate(
        _ policy: AttestationPolicy,
        _ claims: [PolicyClaim],
        timeout: TimeInterval = 2
    ) async -> AttestationPolicy.Decision {
        let cancelled = CancellationFlag()
        let deadline = ContinuousClock.now + .milliseconds(Int(max(0, min(timeout, 86400)) * 1000))
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                DispatchQueue.global(qos: .userInitiated).async {
                    continuation.resume(
                        returning: policy.evaluate(claims) { cancelled.isSet || ContinuousClock.now >= deadline }
                    )
                }
            }
        } onCancel: {
            cancelled.set()
        }
    }

    /// Parse and evaluate a draft policy (anyone may send one): at most ``Configuration/maxDraftPolicyLength``
    /// bytes (`DraftPolicyTooLarge`), and at most ``Configuration/maxConcurrentDraftEvaluations`` at once, one more
    /// refused at once with 429 `TooManyDraftPolicyEvaluations` rather than queued beside stored policies'
    /// evaluations. Drafts are not cached: they would push the stored policies out of the cache.
    func evaluateDraft(_ text: String, claims: [PolicyClaim]) async throws -> AttestationPolicy.Decision {
        guard text.utf8.count <= configuration.maxDraftPolicyLength else {
            throw ServiceError.badRequest(
                "DraftPolicyTooLarge",
                "the draft policy is longer than \(configuration.maxDraftPolicyLength) bytes"
            )
        }
        let policy: AttestationPolicy
        do {
            policy = try AttestationPolicy(text: text)
        } catch {
            throw ServiceError.badRequest("InvalidPolicy", error.description)
        }
        guard draftEvaluations.acquire() else {
            throw ServiceError(
                status: .tooManyRequests,
                code: "TooManyDraftPolicyEvaluations",
                message: "\(draftEvaluations.limit) draft policies are being evaluated already; try again later"
            )
        }
        defer { draftEvaluations.release() }
        return await Self.evaluate(policy, claims, timeout: configuration.policyEvaluationTimeout)
    }

    /// The parsed policy of `text` (whose hash is `hash`), the policy in force for `type`, from the cache or parsed
    /// now.
    ///
    /// - Throws: ``ServiceError`` 500 `StoredPolicyInvalid` when it does not parse: only a policy stored before this
    ///   version's limits can fail here (``setPolicy(type:jws:credential:at:)`` parses what it stores), which is the
    ///   operator's to fix, not the client's.
    func parsedPolicy(_ text: String, hash: String, type: AttestationType) throws(ServiceError) -> AttestationPolicy {
        if let cached = policyCache.withLock({ $0[hash] }), cached.text == text { return cached }
        let policy: AttestationPolicy
        do {
            policy = try AttestationPolicy(text: text)
        } catch {
            throw storedPolicyInvalid(type: type, hash: hash, error)
        }
        policyCache.withLock { cache in
            if cache.count >= Self.policyCacheSize { cache.removeAll(keepingCapacity: true) }
            cache[hash] = policy
        }
        return policy
    }

    /// Delete audit records past ``Configuration/auditRetention`` and beyond ``Configuration/maxAuditRecords``, at
    /// most once an hour.
    func pruneAuditIfDue(at time: Date) async {
        let due = lastAuditPrune.withLock { last -> Bool in
            if let last, time.timeIntervalSince(last) < 3600, time >= last { return false }
            last = time
            return true
        }
        guard due else { return }
        do {
            try await store.pruneAudit(
                before: time.addingTimeInterval(-configuration.auditRetention),
                keepingAtMost: configuration.maxAuditRecords
            )
        } catch {
            logger.warning("audit pruning failed", metadata: ["error": "\(error)"])
        }
    }
}

/// A flag one task sets and another thread polls.
final class CancellationFlag: Sendable {
    private let value = Atomic<Bool>(false)

    var isSet: Bool { value.load(ordering: .relaxed) }

    func set() { value.store(true, ordering: .relaxed) }
}
