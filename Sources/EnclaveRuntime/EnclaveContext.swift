public import EnclaveCore
internal import Synchronization
internal import _EnclaveChannel

/// What the runtime gives an enclave application: its identity and a way to call the host.
public struct EnclaveContext: Sendable {
    /// The enclave's identity as the platform measured it: read from a report the platform made of this enclave
    /// (its MAC checked with the enclave's own report key) at start-up, never taken from the host. An enclave whose
    /// host names another identity refuses to start.
    public let identity: EnclaveIdentity
    /// The enclave's process ID.
    public let processID: Int32
    let peer: RPCPeer
    let platform: RPCPeer
    let keyCache = KeyCache()
    let encoder: BinaryEncoder
    let decoder: BinaryDecoder

    /// Call the host (an OCALL). May run while an ECALL is in progress.
    ///
    /// The host is untrusted: its answer is decoded strictly, and a malformed answer throws
    /// `EnclaveError.Code.malformedInput` rather than producing a value. Validate what it means, too.
    ///
    /// When the host opted the call in to switchless OCALLs (`Switchless.ocallSlots`), it goes through the shared
    /// call ring while a slot is free and the request fits one; the host's answer there is checked the same way.
    public func ocall<C: EnclaveCall>(_ call: C.Type, _ input: C.Input) async throws -> C.Output {
        let argument = try encoder.encode(input)
        if let switchless = SwitchlessWorker.current, switchless.routes(C.name),
            let result = try await switchless.caller.call(name: C.name, argument: argument)
        {
            return try CallCodec.decodeResult(call, result, decoder: decoder)
        }
        let result = try await peer.call(name: C.name, argument: argument)
        return try CallCodec.decodeResult(call, result, decoder: decoder)
    }
}
