import CleanRoom
import CleanRoomInterface
import EnclaveRuntime

/// The clean room enclave: opens under a fully signed contract that names it, binds the contract ID and its
/// ephemeral key into its evidence, and accepts halts.
///
/// It loads data sets whose keys arrive wrapped to its attested key (``CleanRoomLoad``). It runs approved queries for runners
/// who signed their request (``CleanRoomRunQuery``).
@main
struct CleanRoomEnclave: EnclaveApplication {
    let context: EnclaveContext
    let room = CleanRoomState()

    init(context: EnclaveContext) {
        self.context = context
    }

    func register(_ calls: inout ECallTable) {
        let context = self.context
        let room = self.room
        let persistence = RoomPersistence(
            seal: { plaintext in try await context.seal(plaintext, policy: .signerID) },
            unseal: { blob in
                let unsealed = try await context.unseal(blob)
                return (unsealed.plaintext, unsealed.securityVersion)
            },
            load: { contractID in
                try await context.ocall(CleanRoomLoadState.self, .init(contractID: contractID)).blob
            },
            save: { contractID, blob in
                _ = try await context.ocall(CleanRoomSaveState.self, .init(contractID: contractID, blob: blob))
            },
            counter: { request in try await context.ocall(CleanRoomCounter.self, request) }
        )
        calls.register(CleanRoomOpen.self) { request in
            try room.open(request, identity: context.identity)
            // The durable state (budget ledger, receipt chain head) the host keeps, checked against the key broker's
            // rollback counter, before anything runs; the runtime data then binds the counter's key too.
            try await room.restore(using: persistence)
            let opened = try room.runtime(challenge: request.challenge)
            let evidence = try await context.evidence(reportData: EnclaveContext.reportData(hashing: opened.runtime))
            let answer = CleanRoomOpened(contractID: opened.contractID, runtimeData: opened.runtime, evidence: evidence)
            try room.remember(answer)
            return answer
        }
        calls.register(CleanRoomHalt.self) { statement in
            try await room.halt(statement, persistence: persistence)
        }
        calls.register(CleanRoomLoad.self) { request in
            try await room.load(request, persistence: persistence) { chunk in
                try await context.ocall(CleanRoomReadChunk.self, chunk)
            }
        }
        calls.register(CleanRoomRunQuery.self) { request in
            try await room.run(request, persistence: persistence)
        }
        calls.register(CleanRoomStatus.self) { _ in
            room.status()
        }
    }
}
