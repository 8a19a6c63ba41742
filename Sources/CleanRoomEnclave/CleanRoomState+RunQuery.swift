import CleanRoom
import CleanRoomEngine
import CleanRoomInterface
import Crypto
import EnclaveCore
import Foundation

/// Running a query: the signed request is checked, run under the contract's rules, encrypted to the recipients and
/// receipted with the enclave's attested key.
extension CleanRoomState {
    /// The most request nonces remembered; beyond it, requests are refused (fail closed rather than forget one).
    static let maxNonces = 1 << 20

    /// Remember the evidence just made for the enclave's key: receipts carry it.
    func remember(_ opened: CleanRoomOpened) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let bytes = Array(try encoder.encode(opened))
        self.opened.withLock { $0?.evidence = bytes }
    }

    /// Run `request`: verify the runner's signature, run the query, encrypt the result, make the receipt, save the
    /// durable state (budget ledger, chain head) through `persistence`; the answer leaves only once it is saved.
    func run(_ request: CleanRoomQueryRequest, persistence: RoomPersistence? = nil) async throws -> CleanRoomQueryAnswer
    {
        try await gate.run { try await runAlone(request, persistence: persistence) }
    }

    private func runAlone(
        _ request: CleanRoomQueryRequest,
        persistence: RoomPersistence?
    ) async throws -> CleanRoomQueryAnswer {
        let limit = CleanRoomQueryRequest.maxFieldBytes
        guard request.parameters.count <= CleanRoomQueryRequest.maxParameters,
            ([request.queryID, request.runner, request.nonce, request.signature] + Array(request.parameters.keys)
                + Array(request.parameters.values)).allSatisfy({ $0.utf8.count <= limit })
        else { throw EnclaveError.limitExceeded("limitExceeded: the query request is too large") }
        guard (8...128).contains(request.nonce.utf8.count) else {
            throw EnclaveError.malformedInput("malformed: the nonce must have 8 to 128 characters")
        }
        let (contract, engine, signingKey) = try opened.withLock {
            current throws -> (Contract, QueryEngine, P256.Signing.PrivateKey) in
            guard let room = current else {
                throw EnclaveError.callFailed("notActive: no contract is open in this clean room")
            }
            guard room.state.phase == .active else {
                throw EnclaveError.callFailed("halted: this clean room's contract was halted")
            }
            guard room.restored else {
                throw EnclaveError.callFailed("notRestored: the clean room's saved state was not restored")
            }
            guard let engine = room.engine else {
                throw EnclaveError.callFailed("notLoaded: no data set is loaded in this clean room")
            }
            return (room.contract, engine, room.receiptKey)
        }
        // The runner's signature, with the runner's key in the contract.
        guard let party = contract.parties.first(where: { $0.name == request.runner }) else {
            throw EnclaveError.invalidSignature("notAParty: \(request.runner.prefix(100)) is not a party")
        }
        let message = QueryRequestSigning.message(
            contractID: contract.id,
            queryID: request.queryID,
            runner: request.runner,
            parameters: request.parameters,
            nonce: request.nonce
        )
        guard let raw = Base64URL.decode(request.signature), raw.count == 64,
            let signature = try? P256.Signing.ECDSASignature(rawRepresentation: raw),
            party.signingKey.isValidSignature(signature, for: message)
        else {
            throw EnclaveError.invalidSignature(
                "badSignature: the request's signature does not verify with \(request.runner)'s key"
            )
        }
        // Typed parameters.
        var parameters: [String: SQLValue] = [:]
        for (name, text) in request.parameters {
            guard let value = QueryRequestSigning.value(text) else {
                throw EnclaveError.malformedInput(
                    "badParameter: typedParameters: :\(name.prefix(100)) is not `type:value` text"
                )
            }
            parameters[name] = value
        }
        let engineRequest = QueryEngine.Request(
            queryID: request.queryID,
            runner: request.runner,
            parameters: parameters
        )
        let query: Contract.Query
        do throws(CleanRoomError) {
            query = try engine.authorize(engineRequest)
        } catch {
            throw Self.crossing(error)
        }
        // Every data set the query reads must be loaded; the nonce is spent before running (a replay never runs).
        let inputs = try opened.withLock { current throws -> [String: Digest32] in
            guard var room = current else {
                throw EnclaveError.callFailed("notActive: no contract is open in this clean room")
            }
            var inputs: [String: Digest32] = [:]
            for name in query.reads {
                guard let digest = room.inputs[name] else {
                    throw EnclaveError.callFailed("notLoaded: data set \(name) is not loaded")
                }
                inputs[name] = digest
            }
            guard !room.nonces.contains(request.nonce) else {
                throw EnclaveError.callFailed("replay: this request's nonce was used before")
            }
            guard room.nonces.count < Self.maxNonces else {
                throw EnclaveError.limitExceeded("limitExceeded: too many requests for this clean room")
            }
            room.nonces.insert(request.nonce)
            current = room
            return inputs
        }
        let made: (Receipt, ResultEnvelope, Int64, String)
        do throws(CleanRoomError) {
            made = try make()
        } catch {
            throw Self.crossing(error)
        }
        // The engine's count of suppressed groups stays here: it can depend on groups below the minimum.
        let (receipt, envelope, time, queryID) = made
        // The durable state first (the spent budget and the new chain head): no result leaves unless it is saved.
        try await persist(head: .init(sequence: receipt.sequence, digest: receipt.digest), using: persistence)
        return CleanRoomQueryAnswer(
            id: receipt.digest.hex,
            queryID: queryID,
            result: envelope.canonicalBytes,
            receipt: receipt.canonicalBytes,
            time: time
        )

        func make() throws(CleanRoomError) -> (Receipt, ResultEnvelope, Int64, String) {
            let outcome = try engine.run(engineRequest)
            let table = CleanRoomResultTable(
                columns: outcome.columns,
                rows: outcome.rows.map { $0.map(QueryRequestSigning.text) }
            )
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            guard let plaintext = try? encoder.encode(table) else {
                throw CleanRoomError(.engine, "the result did not encode")
            }
            let envelope = try ResultEnvelope(
                sealing: Array(plaintext),
                contract: contract,
                queryID: query.id,
                recipients: contract.recipients.map(\.party)
            )
            let time = Int64(Date().timeIntervalSince1970)
            let receipt = try opened.withLock { current throws(CleanRoomError) -> Receipt in
                guard let room = current else { throw CleanRoomError(.notActive, "no contract is open") }
                var receipt = Receipt(
                    contractID: contract.id,
                    queryID: query.id,
                    parameters: parameters,
                    inputs: inputs,
                    result: envelope.digest,
                    minIdentities: outcome.minIdentities,
                    epsilonSpentMilli: outcome.epsilonSpentMilli,
                    time: time,
                    sequence: room.head.map { $0.sequence + 1 } ?? 0,
                    previous: room.head?.digest,
                    evidence: room.evidence
                )
                try receipt.sign(with: signingKey)
                return receipt
            }
            return (receipt, envelope, time, query.id)
        }
    }
}
