public import EnclaveCore

/// The ECALLs an enclave serves, by name.
public struct ECallTable: Sendable {
    var handlers: [String: CallCodec.RawHandler] = [:]
    let encoder: BinaryEncoder
    let decoder: BinaryDecoder

    init(encoder: BinaryEncoder, decoder: BinaryDecoder) {
        self.encoder = encoder
        self.decoder = decoder
    }

    /// Serve `call` with `handler`. A later registration of the same name replaces the earlier one.
    ///
    /// The argument is decoded strictly before the handler runs; a decoding failure answers the host with
    /// `malformedInput` and never reaches the handler.
    ///
    /// What a handler throws crosses to the untrusted host as an error carrying its message (an `EnclaveError`'s
    /// reason, any other error's description) and, when it says what was wrong with the call (`malformedInput`,
    /// `limitExceeded`, …), its code; anything else arrives as `callFailed`. Never throw an error that carries a
    /// secret.
    public mutating func register<C: EnclaveCall>(
        _ call: C.Type,
        handler: @escaping @Sendable (C.Input) async throws -> C.Output
    ) {
        precondition(
            !C.name.hasPrefix(LaunchProtocol.reservedPrefix),
            "call names starting with __enclavekit. are reserved"
        )
        handlers[C.name] = CallCodec.rawHandler(call, encoder: encoder, decoder: decoder, handler: handler)
    }

    /// The names of the registered calls.
    public var names: [String] { handlers.keys.sorted() }
}
