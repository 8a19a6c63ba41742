/// A JSON document read in one pass into a flat list of tokens (a "tape"): the package's one strict JSON tokenizer.
/// Attestation reads collateral from a tape and builds its `JSONValue` tree from one; the key broker builds a
/// token's `TokenValue`s and the clean room its `CanonicalJSON` values from the tokens of `tokens(of:rules:)`.
///
/// A tree costs an array per object and per array and a box per nested value; the TCB info alone has a few hundred
/// small objects, and building and releasing that tree was most of its parse time. The tape is one array; a
/// container's token records where its contents end, so a lookup skips over what it does not read.
///
/// What is accepted: RFC 8259, one value, no trailing bytes, UTF-8, escapes including surrogate pairs (a lone
/// surrogate is refused), no control characters in strings, no number beyond `Double`'s range, no duplicate keys
/// (in every object, read or not; two keys are the same when they are equal as Swift strings, so canonically
/// equivalent spellings are duplicates too), nesting within `Rules/maximumDepth`; and what `Rules` narrows further
/// (no `null`, integers only).
package final class JSONTape: Sendable {
    /// What a token is.
    package enum Kind: UInt8, Sendable {
        case object, array, string, escapedString, integer, double, bool, null
    }

    /// One value. Strings: `start..<end` are the raw bytes between the quotes. Numbers: `start..<end` are the
    /// number's bytes. Containers: `next` is the index of the token after everything they contain (an object's
    /// members are key and value tokens in turn).
    package struct Token: Sendable {
        package var kind: Kind
        package var start: Int
        package var end: Int
        package var next: Int
        /// Integers: the value; booleans: 1 for true; doubles: the bit pattern; strings: 1 when the raw bytes are not
        /// all ASCII.
        package var value: Int
    }

    /// What a reader accepts beyond RFC 8259's grammar.
    package struct Rules: Sendable {
        /// Containers nest at most this deep (the document's own value is at depth 0, so `maximumDepth` 1 allows a
        /// container of scalars and no container within it).
        package var maximumDepth: Int
        /// Whether scalars count as a level too: then no value at all may sit at depth `maximumDepth` (a container
        /// `maximumDepth` deep must be empty).
        package var scalarsNest: Bool
        /// Whether `null` is a value.
        package var allowsNull: Bool
        /// Whether numbers are integers only: no fraction, no exponent, within `Int64`; every one is then an
        /// `Kind/integer` token holding its exact value. Otherwise an integer is an `Kind/integer` token only within
        /// ±2^53, and any other number a `Kind/double`.
        package var integersOnly: Bool

        package init(maximumDepth: Int, scalarsNest: Bool, allowsNull: Bool = true, integersOnly: Bool = false) {
            self.maximumDepth = maximumDepth
            self.scalarsNest = scalarsNest
            self.allowsNull = allowsNull
            self.integersOnly = integersOnly
        }

        /// Collateral and evidence: values nest below 64 levels.
        package static let collateral = Rules(maximumDepth: 64, scalarsNest: true)
    }

    /// Why a document was refused.
    package struct Failure: Error, Sendable, CustomStringConvertible {
        package enum Code: Sendable, Equatable {
            /// Not JSON (grammar, strings, numbers out of range, trailing bytes).
            case syntax
            /// Nested deeper than `Rules/maximumDepth`.
            case nesting
            /// An object names a key twice (`key` is it).
            case duplicateKey
            /// JSON that `Rules` refuse (`null`, a number that is not an integer or out of `Int64`).
            case notAllowed
        }

        package let code: Code
        /// What was wrong (`"duplicate key \"k\""`, `"nesting deeper than 64"`, …).
        package let reason: String
        /// Where, in bytes from the start.
        package let offset: Int
        /// The key named twice (for `Code/duplicateKey`).
        package let key: String?

        /// `"<reason> at offset <offset>"`.
        package var description: String { "\(reason) at offset \(offset)" }
    }

    package let bytes: [UInt8]
    package let tokens: [Token]

    /// Parse exactly one JSON value from `bytes`.
    package init(parsing bytes: [UInt8], rules: Rules) throws(Failure) {
        self.bytes = bytes
        let result = bytes.withUnsafeBufferPointer { buffer -> Result<[Token], Failure> in
            do throws(Failure) {
                return .success(try Self.tokens(of: buffer, rules: rules))
            } catch { return .failure(error) }
        }
        self.tokens = try result.get()
    }

    /// The tokens of exactly one JSON value filling `bytes` (whitespace around it allowed); the tokens' offsets are
    /// into `bytes`.
    package static func tokens(of bytes: UnsafeBufferPointer<UInt8>, rules: Rules) throws(Failure) -> [Token] {
        var parser = JSONTokenizer(bytes: bytes, rules: rules)
        parser.skipWhitespace()
        try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.position == bytes.count else { throw parser.fail("trailing bytes") }
        return parser.tokens
    }

    /// The string token at `index` as a `JSONString` (`nil` for any other kind).
    package func string(at index: Int) -> JSONString? {
        let token = tokens[index]
        guard token.kind == .string || token.kind == .escapedString else { return nil }
        return JSONString(raw: bytes[token.start..<token.end], escaped: token.kind == .escapedString)
    }

    /// Whether the string token at `index` is exactly `text` (as `JSONString/equals(_:)` judges).
    package func string(at index: Int, equals text: String) -> Bool {
        let token = tokens[index]
        if token.kind == .escapedString { return string(at: index)?.equals(text) ?? false }
        guard token.kind == .string else { return false }
        var text = text
        return text.withUTF8 { utf8 in
            bytes.withUnsafeBufferPointer {
                Self.equal(UnsafeBufferPointer(rebasing: $0[token.start..<token.end]), utf8)
            }
        }
    }

    /// The value of the member named `key` of the object at `index`, if there is one.
    package func member(_ key: String, of index: Int) -> Int? {
        let object = tokens[index]
        guard object.kind == .object else { return nil }
        var key = key
        return key.withUTF8 { utf8 -> Int? in
            bytes.withUnsafeBufferPointer { buffer -> Int? in
                var member = index + 1
                while member < object.next {
                    let token = tokens[member]
                    let matches: Bool
                    if token.kind == .escapedString {
                        matches = JSONString(raw: bytes[token.start..<token.end], escaped: true)
                            .equals(String(decoding: utf8, as: UTF8.self))
                    } else {
                        matches = Self.equal(UnsafeBufferPointer(rebasing: buffer[token.start..<token.end]), utf8)
                    }
                    if matches { return member + 1 }
                    member = tokens[member + 1].next
                }
                return nil
            }
        }
    }

    /// Whether `a` and `b` hold the same bytes.
    package static func equal(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        for index in 0..<a.count where a[index] != b[index] { return false }
        return true
    }

    /// The indices of the elements of the array at `index`.
    package func elements(of index: Int) -> [Int] {
        var result: [Int] = []
        var element = index + 1
        while element < tokens[index].next {
            result.append(element)
            element = tokens[element].next
        }
        return result
    }
}
