/// The two messages signed (ES256) around a clean room's rollback counter, built in one place for both ends: the
/// clean room enclave and the key broker enclave each sign one and verify the other, so a byte of difference
/// between the two sides would make every counter operation fail (or, worse, let one message stand for another).
///
/// - ``increment(contract:expected:state:nonce:)``: what the clean room enclave signs with its counter request key
///   to ask the key broker to move the counter; the broker verifies it.
/// - ``answer(contract:value:state:nonce:)``: what the key broker signs with its signing key over the counter's value;
///   the clean room enclave verifies it.
///
/// The two start with different domain strings (`EnclaveKit.counter.increment.v1`, `EnclaveKit.rollbackCounter.v1`),
/// so neither can be taken for the other.
public enum RollbackCounterMessage: Sendable {
    /// The domain string that starts ``increment(contract:expected:state:nonce:)`` (before a zero byte).
    public static let incrementDomain = "EnclaveKit.counter.increment.v1"
    /// The first line of ``answer(contract:value:state:nonce:)``.
    public static let answerDomain = "EnclaveKit.rollbackCounter.v1"

    /// The bytes the clean room enclave signs to increment a contract's counter.
    ///
    /// Layout, with no separators other than those listed:
    ///
    /// | bytes | content |
    /// | --- | --- |
    /// | 31 | ``incrementDomain`` in ASCII |
    /// | 1 | `0x00` |
    /// | 4 | UTF-8 length of `contract`, unsigned, big-endian |
    /// | n | `contract` in UTF-8 |
    /// | 8 | `expected`, unsigned, big-endian |
    /// | 4 | UTF-8 length of `state`, unsigned, big-endian |
    /// | n | `state` in UTF-8 |
    /// | 4 | UTF-8 length of `nonce`, unsigned, big-endian |
    /// | n | `nonce` in UTF-8 |
    ///
    /// Each string is preceded by its length, so no two different requests share a message (moving a character
    /// from one field to the next changes a length). The callers keep each field short (hex digests and nonces); a
    /// string of 4 GiB or more would have its length truncated to 32 bits.
    ///
    /// - Parameters:
    ///   - contract: the contract ID (lower-case hex).
    ///   - expected: the value the counter must be at.
    ///   - state: SHA-256 (lower-case hex) of the state saved at `expected + 1`.
    ///   - nonce: the clean room enclave's fresh nonce.
    /// - Returns: the message's bytes.
    public static func increment(contract: String, expected: UInt64, state: String, nonce: String) -> [UInt8] {
        var message = Array(incrementDomain.utf8)
        message.append(0)
        appendField(contract, to: &message)
        appendBigEndian(expected, to: &message)
        appendField(state, to: &message)
        appendField(nonce, to: &message)
        return message
    }

    /// The bytes the key broker signs to answer a counter operation (read or increment).
    ///
    /// Layout: the UTF-8 text of five lines joined by `\n` (`0x0A`), with no line break at the end:
    ///
    /// ```
    /// EnclaveKit.rollbackCounter.v1
    /// contract=<contract>
    /// value=<value in decimal, no leading zeros>
    /// state=<state>
    /// nonce=<nonce>
    /// ```
    ///
    /// Every field is hex, decimal or a nonce of `[0-9a-zA-Z_-]` (the callers check), so no field can hold a line
    /// break and the text can't be read two ways. `state` is empty at value 0.
    ///
    /// - Parameters:
    ///   - contract: the contract ID (lower-case hex).
    ///   - value: the counter's value.
    ///   - state: the state digest recorded with the value (lower-case hex; empty at value 0).
    ///   - nonce: the nonce of the request answered.
    /// - Returns: the message's bytes.
    public static func answer(contract: String, value: UInt64, state: String, nonce: String) -> [UInt8] {
        Array("\(answerDomain)\ncontract=\(contract)\nvalue=\(value)\nstate=\(state)\nnonce=\(nonce)".utf8)
    }

    /// Appends `text`'s UTF-8 length (4 bytes, big-endian) and its UTF-8 bytes.
    private static func appendField(_ text: String, to message: inout [UInt8]) {
        let bytes = Array(text.utf8)
        appendBigEndian(UInt32(truncatingIfNeeded: bytes.count), to: &message)
        message += bytes
    }

    /// Appends `value`'s bytes, most significant first.
    private static func appendBigEndian<Value: FixedWidthInteger>(_ value: Value, to message: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { message += $0 }
    }
}
