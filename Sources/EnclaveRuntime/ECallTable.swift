public import EnclaveCore
internal import _EnclaveChannel

/// The ECALLs an enclave serves, by name.
public struct ECallTable: Sendable {
    var handlers: [String: CallCodec.RawHandler] = [:]
    /// The handlers registered as synchronous, which a switchless server runs on its own thread.
    var inlineHandlers: [String: CallCodec.SyncRawHandler] = [:]
    /// Of those, the calls that take and return `Empty`: the handler itself, which a switchless server runs without
    /// decoding or encoding anything when the argument is the one encoding of `Empty`.
    var emptyHandlers: [String: @Sendable () throws -> Void] = [:]
    /// The application's limit on concurrent calls: `handlers` take their permits themselves, `inlineHandlers`
    /// through `switchlessHandler(_:)`'s caller.
    var limiter: AsyncLimiter?
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
        inlineHandlers[C.name] = nil
        emptyHandlers[C.name] = nil
    }

    /// Serve `call` with a `handler` that does not suspend: the same as the asynchronous registration for regular
    /// calls; a switchless call runs it directly on the thread that took the call from the ring (no task, no
    /// executor hop), so keep it short or make the call regular.
    ///
    /// A closure without `await` takes this registration. Decoding, errors and the limit on concurrent calls are
    /// those of the asynchronous one.
    public mutating func register<C: EnclaveCall>(
        _ call: C.Type,
        handler: @escaping @Sendable (C.Input) throws -> C.Output
    ) {
        precondition(
            !C.name.hasPrefix(LaunchProtocol.reservedPrefix),
            "call names starting with __enclavekit. are reserved"
        )
        var inline = CallCodec.syncRawHandler(call, encoder: encoder, decoder: decoder, handler: handler)
        if C.Input.self == Empty.self, C.Output.self == Empty.self, encoder.maxMessageSize >= 2 {
            // A call that takes and returns nothing: its argument's one encoding (the only one the strict decoder
            // accepts) is answered without the codec's generic layers; any other bytes take the general path, which
            // refuses them with its own error.
            let general = inline
            inline = { bytes in
                guard bytes.count == 2, bytes[bytes.startIndex] == 1, bytes[bytes.startIndex + 1] == 0 else {
                    return try general(bytes)
                }
                _ = try handler(unsafeBitCast(Empty(), to: C.Input.self))
                return BinaryEncoder.emptyEncoding
            }
            emptyHandlers[C.name] = { _ = try handler(unsafeBitCast(Empty(), to: C.Input.self)) }
        } else {
            emptyHandlers[C.name] = nil
        }
        handlers[C.name] = { [inline] bytes in try inline(bytes) }
        inlineHandlers[C.name] = inline
    }

    /// The switchless server's handler of `name`: the (limited) asynchronous handler, and the synchronous one with
    /// the limit's permits when it was registered so.
    func switchlessHandler(_ name: String) -> SwitchlessServer.Handler? {
        guard let handler = handlers[name] else { return nil }
        return SwitchlessServer.Handler(
            handler,
            inline: inlineHandlers[name],
            empty: emptyHandlers[name],
            limiter: limiter
        )
    }

    /// The names of the registered calls.
    public var names: [String] { handlers.keys.sorted() }
}
