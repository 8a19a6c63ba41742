public import EnclaveCore

/// The OCALLs a host serves for its enclave, by name.
///
/// Register every handler before loading: the enclave may call as soon as it starts.
public struct OCallTable: Sendable {
    package var handlers: [String: CallCodec.RawHandler] = [:]

    /// An empty table: the enclave's OCALLs fail with `unknownCall` until handlers are registered.
    public init() {}

    /// Serve `call` with `handler`.
    ///
    /// What a handler throws reaches the enclave as an error carrying its message (an `EnclaveError`'s reason, any
    /// other error's description) and, when it says what was wrong with the call (`malformedInput`,
    /// `limitExceeded`, …), its code; anything else arrives as `callFailed`. The enclave treats every answer as
    /// hostile input.
    public mutating func register<C: EnclaveCall>(
        _ call: C.Type,
        handler: @escaping @Sendable (C.Input) async throws -> C.Output
    ) {
        precondition(
            !C.name.hasPrefix(LaunchProtocol.reservedPrefix),
            "call names starting with __enclavekit. are reserved"
        )
        handlers[C.name] = CallCodec.rawHandler(
            call,
            encoder: BinaryEncoder(),
            decoder: BinaryDecoder(),
            handler: handler
        )
    }
}
