internal import AttestationService
internal import CleanRoom
public import CleanRoomInterface
internal import EnclaveCore
internal import Foundation

/// Running queries: the host carries a runner's signed request to the enclave and stores what it answers.
extension CleanRoomHost {
    /// Have the enclave run `request` (signed by its runner); the encrypted result and the receipt are stored
    /// under the run's ID. Refusals are 422s named by the rule (`queryNotApproved`, `runnerNotAllowed`,
    /// `badSignature`, `badParameter`, `replay`, …).
    public func runQuery(_ request: CleanRoomQueryRequest) async throws -> CleanRoomQueryAnswer {
        _ = try attestation()
        let answer: CleanRoomQueryAnswer
        do {
            answer = try await enclave.call(CleanRoomRunQuery.self, request)
        } catch let error as EnclaveError {
            throw Self.refusal(error)
        }
        let sequence = try Self.refusing { () throws(CleanRoomError) in
            try Receipt(canonicalBytes: answer.receipt).sequence
        }
        try await store.putRun(
            .init(
                id: answer.id,
                queryID: answer.queryID,
                sequence: sequence,
                time: Date(timeIntervalSince1970: TimeInterval(answer.time)),
                result: answer.result,
                receipt: answer.receipt
            )
        )
        return answer
    }

    /// The stored run `id` (a receipt digest, hex).
    public func storedRun(_ id: String) async throws -> CleanRoomStore.RunRecord {
        guard id.utf8.count == 64, id.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }),
            let run = try await store.run(id)
        else { throw ServiceError(status: .notFound, code: "NotFound", message: "no run \(id.prefix(64))") }
        return run
    }
}
