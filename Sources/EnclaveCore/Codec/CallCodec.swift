/// Wraps a typed call handler into one over encoded bytes, decoding the argument strictly first.
package enum CallCodec {
    package typealias RawHandler = @Sendable (ArraySlice<UInt8>) async throws -> [UInt8]

    package static func rawHandler<C: EnclaveCall>(
        _ call: C.Type,
        encoder: BinaryEncoder,
        decoder: BinaryDecoder,
        handler: @escaping @Sendable (C.Input) async throws -> C.Output
    ) -> RawHandler {
        { bytes in
            let input = try decodeArgument(C.self, bytes, decoder)
            return try encoder.encode(try await handler(input))
        }
    }

    /// A handler that completes without suspending: a caller on a thread of its own (a switchless server) runs it
    /// inline, with no task, frame or executor hop.
    package typealias SyncRawHandler = @Sendable (ArraySlice<UInt8>) throws -> [UInt8]

    /// `rawHandler(_:encoder:decoder:handler:)` for a synchronous `handler`: the same strict decoding and errors.
    package static func syncRawHandler<C: EnclaveCall>(
        _ call: C.Type,
        encoder: BinaryEncoder,
        decoder: BinaryDecoder,
        handler: @escaping @Sendable (C.Input) throws -> C.Output
    ) -> SyncRawHandler {
        { bytes in
            let input = try decodeArgument(C.self, bytes, decoder)
            return try encoder.encode(try handler(input))
        }
    }

    /// A call's argument, decoded strictly; a failure that is not already an `EnclaveError` becomes `malformedInput`
    /// naming the call (both raw handlers).
    @inline(__always)
    static func decodeArgument<C: EnclaveCall>(
        _ call: C.Type,
        _ bytes: ArraySlice<UInt8>,
        _ decoder: BinaryDecoder
    ) throws -> C.Input {
        do {
            return try decoder.decode(C.Input.self, from: bytes)
        } catch let error as EnclaveError {
            throw error
        } catch {
            throw EnclaveError.malformedInput("\(C.name): argument does not decode: \(error)")
        }
    }

    /// Decode a call's result, mapping a decoding failure to `malformedInput`.
    package static func decodeResult<C: EnclaveCall>(
        _ call: C.Type,
        _ bytes: [UInt8],
        decoder: BinaryDecoder
    ) throws
        -> C.Output
    {
        do {
            return try decoder.decode(C.Output.self, from: bytes)
        } catch let error as EnclaveError {
            throw error
        } catch {
            throw EnclaveError.malformedInput("\(C.name): the answer does not decode: \(error)")
        }
    }
}
