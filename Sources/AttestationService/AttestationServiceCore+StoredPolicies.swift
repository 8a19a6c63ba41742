internal import Logging

extension AttestationServiceCore {
    /// Checks that every stored policy still parses, logging each that does not (an error naming the attestation
    /// type and what to do). Runs when the service starts.
    ///
    /// A policy is parsed before it is stored, but under the limits of the version that stored it: one stored before
    /// a limit was added (16 conditions a rule, 64 predicates a condition, …) no longer parses. Attestation of its
    /// type then answers 500 `StoredPolicyInvalid` — the operator's to fix, with a new policy or a reset — rather
    /// than a 400 that blames every client.
    ///
    /// - Returns: Why each type's stored policy does not parse (empty when all do).
    /// - Throws: The store's error when a policy can't be read.
    public func checkStoredPolicies() async throws -> [AttestationType: String] {
        var invalid: [AttestationType: String] = [:]
        for type in AttestationType.allCases {
            guard let stored = try await store.policy(type: type.rawValue) else { continue }
            do {
                _ = try parsedPolicy(stored.text, hash: Self.hash(stored.text), type: type)
            } catch {
                invalid[type] = error.message
            }
        }
        return invalid
    }

    /// The answer to an attestation of `type` whose stored policy (of hash `hash`) does not parse with `error`:
    /// logged the first time it is met (at start, or when another instance stored it).
    func storedPolicyInvalid(type: AttestationType, hash: String, _ error: PolicySyntaxError) -> ServiceError {
        let message =
            "the stored policy of \(type.rawValue) does not parse under this service's limits (it was stored by an "
            + "earlier version): \(error.description); the operator must set a new policy for \(type.rawValue) "
            + "(enclave policy set) or reset it to the default (enclave policy reset)"
        let first = reportedInvalidPolicies.withLock { $0.insert(hash).inserted }
        if first {
            let line =
                "stored policy invalid: attestation of \(type.rawValue) fails (500 StoredPolicyInvalid) until a new "
                + "policy is set for it or it is reset"
            logger.error(
                "\(line)",
                metadata: ["type": "\(type.rawValue)", "hash": "\(hash)", "reason": "\(error.description)"]
            )
        }
        return ServiceError(status: .internalServerError, code: "StoredPolicyInvalid", message: message)
    }
}
