internal import AttestationService

extension CleanRoomHost {
    /// A fresh attestation token for the opened clean room (its evidence and runtime data through the attestation
    /// service, as for a key release): the credential the key broker needs to move the clean room's rollback counter
    /// (`POST /counters/{contract}/increment`). Its `x-ms-runtime` names the contract and the counter key the
    /// enclave bound; the broker moves the counter only when that key is its own.
    /// - Throws: `ServiceError` — `KeyReleaseNotConfigured`, `NotOpen`, or the attestation service's refusal.
    public func counterToken() async throws -> String {
        guard let keyRelease else {
            throw ServiceError(
                status: .conflict,
                code: "KeyReleaseNotConfigured",
                message: "this host has no attestation service and key broker configured"
            )
        }
        let opened = try attestation()
        return try await Self.step("the attestation service") {
            try await keyRelease.attest(opened.runtimeData, opened.evidence)
        }
    }
}
