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

    /// The privacy budget ledger of a contract.
    ///
    /// For now the ledger and its counter live in the enclave's memory (sealed with a key made at start): the
    /// budget holds for the enclave's lifetime only; a restart starts a fresh ledger. The durable sealed ledger with
    /// a counter held by the key broker plugs in here (`LedgerStore`, `MonotonicCounter`).
    static func budget(for contractID: Digest32) -> PrivacyBudget {
        let key = SymmetricKey(size: .bits256)
        return PrivacyBudget(
            contractID: contractID,
            counter: InMemoryCounter(),
            store: InMemoryLedgerStore(),
            seal: { plaintext in
                guard let combined = try AES.GCM.seal(plaintext, using: key).combined else {
                    throw EnclaveError.callFailed("engine: the ledger did not seal")
                }
                return Array(combined)
            },
            unseal: { blob in Array(try AES.GCM.open(AES.GCM.SealedBox(combined: blob), using: key)) }
        )
    }

    /// Run `request`: verify the runner's signature, run the query, encrypt the result, make the receipt.
    func run(_ request: CleanRoomQueryRequest) throws -> CleanRoomQueryAnswer {
        let limit = CleanRoomQueryRequest.maxFieldBytes
        guard request.parameters.count <= CleanRoomQueryRequest.maxParameters,
            ([request.queryID, request.runner, request.nonce, request.signature] + Array(request.parameters.keys)
                + Array(request.parameters.values)).allSatisfy({ $0.utf8.count <= limit })
        else { throw EnclaveError.limitExceeded("limitExceeded: the query request is too large") }
        guard (8...128).contains(request.nonce.utf8.count) else {
            throw EnclaveError.malformedInput("malformed: the nonce must have 8 to 128 characters")
        }
        let (contract, engine, key) = try opened.withLock {
            current throws -> (Contract, QueryEngine, P256.KeyAgreement.PrivateKey) in
            guard let room = current else {
                throw EnclaveError.callFailed("notActive: no contract is open in this clean room")
            }
            guard room.state.phase == .active else {
                throw EnclaveError.callFailed("halted: this clean room's contract was halted")
            }
            guard let engine = room.engine else {
                throw EnclaveError.callFailed("notLoaded: no data set is loaded in this clean room")
            }
            return (room.contract, engine, room.key)
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
        do throws(CleanRoomError) {
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
            let signingKey: P256.Signing.PrivateKey
            do {
                signingKey = try P256.Signing.PrivateKey(rawRepresentation: key.rawRepresentation)
            } catch {
                throw CleanRoomError(.engine, "the receipt key is unusable")
            }
            let time = Int64(Date().timeIntervalSince1970)
            let receipt = try opened.withLock { current throws(CleanRoomError) -> Receipt in
                guard var room = current else { throw CleanRoomError(.notActive, "no contract is open") }
                var receipt = Receipt(
                    contractID: contract.id,
                    queryID: query.id,
                    parameters: parameters,
                    inputs: inputs,
                    result: envelope.digest,
                    minIdentities: outcome.minIdentities,
                    suppressedGroups: Int64(outcome.suppressedGroups),
                    epsilonSpentMilli: outcome.epsilonSpentMilli,
                    time: time,
                    sequence: room.lastReceipt.map { $0.sequence + 1 } ?? 0,
                    previous: room.lastReceipt?.digest,
                    evidence: room.evidence
                )
                try receipt.sign(with: signingKey)
                room.lastReceipt = receipt
                current = room
                return receipt
            }
            return CleanRoomQueryAnswer(
                id: receipt.digest.hex,
                queryID: query.id,
                result: envelope.canonicalBytes,
                receipt: receipt.canonicalBytes,
                suppressedGroups: outcome.suppressedGroups,
                time: time
            )
        } catch {
            throw Self.crossing(error)
        }
    }
}
