internal import AttestationService
public import CleanRoomInterface
internal import EnclaveCore

extension CleanRoomHost {
    /// Load data set `name` with its owner's key `brokerKey` (at `version`, nil: the current one) released by the
    /// key broker to this clean room: the enclave's runtime data (JSON: contract ID, its key) and evidence go to the
    /// attestation service, the token to the broker, whose release policy decides (the clean room's signer, product,
    /// security version, not debug, `x-ms-runtime.contract` equal to the contract ID); the JWE in its answer goes to
    /// the enclave, which loads only if it opens with its key and the owner's file opens with the key.
    /// - Throws: `ServiceError` — `NotOpen`, `NotUploaded`, `KeyReleaseNotConfigured`; the attestation service's
    ///   or the broker's refusal with its code (`PolicyNotSatisfied`, …, status 403); the enclave's refusals.
    public func loadDataSet(name: String, brokerKey: String, version: String?) async throws -> CleanRoomLoadReport {
        guard let keyRelease else {
            throw ServiceError(
                status: .conflict,
                code: "KeyReleaseNotConfigured",
                message: "this host has no attestation service and key broker configured"
            )
        }
        let opened = try attestation()
        guard try await store.dataSets().contains(where: { $0.name == name }) else {
            throw ServiceError(
                status: .conflict,
                code: "NotUploaded",
                message: "data set \(String(name.prefix(100))) was not uploaded"
            )
        }
        let token = try await Self.step("the attestation service") {
            try await keyRelease.attest(opened.runtimeData, opened.evidence)
        }
        let answer = try await Self.step("the key broker") {
            try await keyRelease.release(brokerKey, version, token)
        }
        return try await loadDataSet(
            name: name,
            wrappedKey: try CleanRoomKeyRelease.wrappedKey(fromReleaseAnswer: answer)
        )
    }

    /// Run one step of a key release; a refusal keeps its code and says who refused.
    static func step<T: Sendable>(_ who: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as ServiceError {
            throw ServiceError(status: error.status, code: error.code, message: "\(who) refused: \(error.message)")
        } catch {
            throw ServiceError(status: .badGateway, code: "KeyReleaseFailed", message: "\(who) failed: \(error)")
        }
    }
}
