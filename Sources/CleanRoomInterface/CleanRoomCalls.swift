public import EnclaveCore

// The clean room enclave's ECALLs (host → clean room enclave). The host is untrusted: it carries the contract and
// the parties' signed documents, which the enclave verifies itself; nothing the host says is taken on its word.

/// ECALL: open the clean room under a contract.
///
/// The enclave parses the canonical contract, verifies every signature and halt statement (the contract must be
/// signed by every party and not halted), checks its own identity against the contract's enclave requirement
/// (signer ID, product ID, minimum security version), makes an ephemeral P-256 key and answers evidence whose report
/// data starts with SHA-256 of the runtime data `{"challenge"?, "contract": <hex ID>, "counterKey"?: <JWK>,
/// "counterRequestKey"?: <JWK>, "keys": [<JWK>], "receiptKey": <JWK>}` (`keys`: the key data keys are wrapped to;
/// `receiptKey`: the ES256 key of its own that signs receipts; with a rollback counter, `counterKey`: the key broker's
/// key that signs the counter's answers, and `counterRequestKey`: the ES256 key of its own that signs its increments,
/// which the broker verifies). It restores its sealed durable state through ``CleanRoomLoadState`` before anything runs. An enclave
/// serves one contract: opening it again under the same contract answers fresh evidence for the same key; under
/// another contract it is refused.
public enum CleanRoomOpen: EnclaveCall {
    public typealias Input = CleanRoomOpenRequest
    public typealias Output = CleanRoomOpened
    public static var name: String { "cleanroom.open" }
}

/// ECALL: deliver a halt statement to an open clean room. A statement that verifies halts it for good; nothing runs
/// afterwards (the status says who halted).
///
/// The enclave saves the halt in its sealed durable state (and counts that state with the key broker's rollback
/// counter) before it answers, so a restarted enclave restores it whatever halts the host passes at open; the answer
/// carries an acknowledgement signed by the receipt key (``CleanRoomHaltAnswer``). A room whose saved state was not
/// restored keeps the halt in memory and refuses (`notRestored`): no acknowledgement.
public enum CleanRoomHalt: EnclaveCall {
    public typealias Input = [UInt8]
    public typealias Output = CleanRoomHaltAnswer
    public static var name: String { "cleanroom.halt.v2" }
}

/// ECALL: what the clean room holds (contract, phase, parties).
public enum CleanRoomStatus: EnclaveCall {
    public typealias Input = Empty
    public typealias Output = CleanRoomStatusReport
    public static var name: String { "cleanroom.status" }
}

/// ECALL: load an encrypted data set of the open contract into the clean room's database.
///
/// The data key arrives wrapped to the enclave's attested key (JWE `ECDH-ES+A256KW`/`A256GCM`, as the key broker's
/// release and a data owner who checked the evidence both make it); the enclave pulls the ciphertext from the host
/// through ``CleanRoomReadChunk``, decrypts and loads it in one transaction (nothing of a file that fails to
/// authenticate stays loaded). A data set loads once.
public enum CleanRoomLoad: EnclaveCall {
    public typealias Input = CleanRoomLoadRequest
    public typealias Output = CleanRoomLoadReport
    public static var name: String { "cleanroom.load" }
}

/// OCALL: the host answers up to `length` bytes of a stored encrypted data set from `offset` (empty at the end).
public enum CleanRoomReadChunk: EnclaveCall {
    public typealias Input = CleanRoomChunkRequest
    public typealias Output = [UInt8]
    public static var name: String { "cleanroom.readChunk" }
}

/// ECALL: run an approved query of the open contract for a runner who signed the request.
///
/// The enclave verifies the runner's ES256 signature with the runner's key in the contract, refuses a replayed
/// nonce, runs the query through the contract's rules (approved query, allowed runner, typed parameters, output
/// rules, privacy budget), encrypts the result to every result recipient of the contract (HPKE) and answers it
/// with a receipt signed by the key its evidence binds, chained to its previous receipt.
public enum CleanRoomRunQuery: EnclaveCall {
    public typealias Input = CleanRoomQueryRequest
    public typealias Output = CleanRoomQueryAnswer
    public static var name: String { "cleanroom.runQuery" }
}
