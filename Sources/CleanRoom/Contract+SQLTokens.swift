extension Contract {
    /// An approved query's SQL cut into tokens exactly where SQLite's tokenizer (`sqlite3GetToken`, SQLite 3.54)
    /// cuts it, so that a decision about the SQL text never mistakes a string, a quoted identifier, a comment or a
    /// parameter for SQL, or the reverse.
    ///
    /// Comments and whitespace are dropped. Each token knows its parenthesis depth (0 is the statement's own level,
    /// outside every subquery, CTE body and argument list). SQLite stops reading at a NUL byte, so SQL with a NUL is
    /// not tokenized at all (``hasNUL``), and a token SQLite would call illegal (an unterminated string or comment
    /// start, a stray character) makes ``illegal`` non-nil: both are reasons to refuse the query.
    public struct SQLTokens: Sendable {
        /// What kind of token.
        public enum Kind: Sendable, Hashable {
            /// An unquoted word: a keyword or an identifier.
            case word
            /// A double-quoted, backquoted or bracketed identifier.
            case quotedIdentifier
            /// A `'…'` string.
            case string
            /// An `x'…'` blob.
            case blob
            /// A number.
            case number
            /// A parameter (`?`, `?NNN`, `:name`, `@name`, `$name`, `#name`).
            case variable
            /// An operator or punctuation.
            case punctuation
        }

        /// One token.
        public struct Token: Sendable, Hashable {
            /// Its kind.
            public var kind: Kind
            /// Its UTF-8 byte range in the SQL.
            public var range: Range<Int>
            /// Its parenthesis depth (a `(` has the depth outside it, as does its `)`).
            public var depth: Int
        }

        /// The SQL's UTF-8 bytes.
        public let bytes: [UInt8]
        /// The tokens, without comments and whitespace.
        public private(set) var tokens: [Token] = []
        /// Whether the SQL has a NUL byte (then ``tokens`` is empty).
        public let hasNUL: Bool
        /// The byte offset of the first token SQLite would call illegal, if any (tokens stop there).
        public private(set) var illegal: Int?

        /// The compound operators: SQLite reports a compound SELECT's column names and origins from one arm only,
        /// and a `VALUES` list of several rows is a compound too. None of these words can be an unquoted identifier
        /// in SQLite (they are not among its fallback-to-identifier keywords).
        public static let compoundKeywords: Set<String> = ["UNION", "INTERSECT", "EXCEPT", "VALUES"]

        /// Tokenize `sql`.
        public init(_ sql: String) {
            bytes = Array(sql.utf8)
            hasNUL = bytes.contains(0)
            guard !hasNUL else { return }
            var index = 0
            var depth = 0
            while index < bytes.count {
                guard let (kind, end) = Self.token(bytes, at: index) else {
                    illegal = index
                    return
                }
                defer { index = end }
                guard let kind else { continue }
                if kind == .punctuation, bytes[index] == UInt8(ascii: ")") { depth -= 1 }
                tokens.append(Token(kind: kind, range: index..<end, depth: depth))
                if kind == .punctuation, bytes[index] == UInt8(ascii: "(") { depth += 1 }
            }
        }

        /// The token's source text.
        public func text(_ token: Token) -> String {
            String(decoding: bytes[token.range], as: UTF8.self)
        }

        /// The upper-cased word, or nil for a token that is not an unquoted word.
        public func word(_ token: Token) -> String? {
            token.kind == .word ? text(token).uppercased() : nil
        }

        /// The identifier a word or a quoted identifier names (quotes removed, doubled quotes undone), lower-cased
        /// as SQLite compares identifiers (ASCII only); nil for other tokens.
        public func identifier(_ token: Token) -> String? {
            switch token.kind {
            case .word:
                return Self.asciiLowercased(text(token))
            case .quotedIdentifier:
                let inner = Array(bytes[(token.range.lowerBound + 1)..<(token.range.upperBound - 1)])
                let quote = bytes[token.range.lowerBound]
                guard quote != UInt8(ascii: "[") else {
                    return Self.asciiLowercased(String(decoding: inner, as: UTF8.self))
                }
                var out: [UInt8] = []
                var index = 0
                while index < inner.count {
                    out.append(inner[index])
                    index += inner[index] == quote ? 2 : 1
                }
                return Self.asciiLowercased(String(decoding: out, as: UTF8.self))
            default:
                return nil
            }
        }

        /// Whether the token is the punctuation `character`.
        public func isPunctuation(_ token: Token, _ character: Character) -> Bool {
            token.kind == .punctuation && token.range.count == 1
                && Character(UnicodeScalar(bytes[token.range.lowerBound]))
                    == character
        }

        /// The first compound operator (``compoundKeywords``) used as SQL, upper-cased, or nil.
        public var compoundOperator: String? {
            tokens.lazy.compactMap { word($0) }.first { Self.compoundKeywords.contains($0) }
        }

        static func asciiLowercased(_ text: String) -> String {
            String(decoding: text.utf8.map { (0x41...0x5A).contains($0) ? $0 + 0x20 : $0 }, as: UTF8.self)
        }

        // MARK: - SQLite's tokenizer

        /// SQLite's `IdChar`: letters, digits, `_`, `$` and every byte of a multi-byte UTF-8 character.
        static func isIDChar(_ byte: UInt8) -> Bool {
            isLetter(byte) || isDigit(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "$") || byte >= 0x80
        }
        static func isLetter(_ byte: UInt8) -> Bool { (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) }
        static func isDigit(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) }
        static func isHexDigit(_ byte: UInt8) -> Bool {
            isDigit(byte) || (0x41...0x46).contains(byte) || (0x61...0x66).contains(byte)
        }
        /// SQLite's `sqlite3Isspace`: space, \t, \n, \v, \f, \r.
        static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (0x09...0x0D).contains(byte) }

        /// The token at `start`: its kind (nil for whitespace and comments) and end; nil when SQLite would call it
        /// illegal.
        static func token(_ z: [UInt8], at start: Int) -> (kind: Kind?, end: Int)? {
            func at(_ index: Int) -> UInt8 { index < z.count ? z[index] : 0 }
            let c = z[start]
            switch c {
            case _ where isSpace(c):
                var i = start + 1
                while isSpace(at(i)) { i += 1 }
                return (nil, i)
            case UInt8(ascii: "-"):
                if at(start + 1) == UInt8(ascii: "-") {
                    var i = start + 2
                    while i < z.count, z[i] != UInt8(ascii: "\n") { i += 1 }
                    return (nil, i)
                }
                if at(start + 1) == UInt8(ascii: ">") {
                    return (.punctuation, start + (at(start + 2) == UInt8(ascii: ">") ? 3 : 2))
                }
                return (.punctuation, start + 1)
            case UInt8(ascii: "/"):
                guard at(start + 1) == UInt8(ascii: "*"), start + 2 < z.count else { return (.punctuation, start + 1) }
                // An unterminated comment runs to the end (SQLite accepts it).
                var i = start + 2
                while i < z.count, !(z[i] == UInt8(ascii: "*") && at(i + 1) == UInt8(ascii: "/")) { i += 1 }
                return (nil, min(i + 2, z.count))
            case UInt8(ascii: "'"), UInt8(ascii: "\""), UInt8(ascii: "`"):
                var i = start + 1
                while i < z.count {
                    if z[i] == c {
                        if at(i + 1) == c { i += 2 } else { break }
                    } else {
                        i += 1
                    }
                }
                guard i < z.count else { return nil }
                return (c == UInt8(ascii: "'") ? .string : .quotedIdentifier, i + 1)
            case UInt8(ascii: "["):
                var i = start + 1
                while i < z.count, z[i] != UInt8(ascii: "]") { i += 1 }
                guard i < z.count else { return nil }
                return (.quotedIdentifier, i + 1)
            case UInt8(ascii: "."):
                guard isDigit(at(start + 1)) else { return (.punctuation, start + 1) }
                return number(z, at: start)
            case _ where isDigit(c):
                return number(z, at: start)
            case UInt8(ascii: "?"):
                var i = start + 1
                while isDigit(at(i)) { i += 1 }
                return (.variable, i)
            case UInt8(ascii: "$"), UInt8(ascii: "@"), UInt8(ascii: ":"), UInt8(ascii: "#"):
                // sqlite-nio builds SQLite with SQLITE_OMIT_TCL_VARIABLE: a name is identifier characters only (no
                // `::` or `(…)` suffix).
                var i = start + 1
                while i < z.count, isIDChar(z[i]) { i += 1 }
                guard i > start + 1 else { return nil }
                return (.variable, i)
            case UInt8(ascii: "x"), UInt8(ascii: "X"):
                guard at(start + 1) == UInt8(ascii: "'") else { return word(z, at: start) }
                var i = start + 2
                while isHexDigit(at(i)) { i += 1 }
                guard at(i) == UInt8(ascii: "'"), (i - start) % 2 == 0 else { return nil }
                return (.blob, i + 1)
            // Before words: a byte-order mark is whitespace to SQLite (else 0xEF starts a word).
            case 0xEF where at(start + 1) == 0xBB && at(start + 2) == 0xBF:
                return (nil, start + 3)  // a byte-order mark is whitespace to SQLite
            case _ where isIDChar(c) && c != UInt8(ascii: "$") && !isDigit(c):
                return word(z, at: start)
            case UInt8(ascii: "!"):
                guard at(start + 1) == UInt8(ascii: "=") else { return nil }
                return (.punctuation, start + 2)
            case UInt8(ascii: "="), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "|"):
                let next = at(start + 1)
                let pairs: Bool =
                    switch c {
                    case UInt8(ascii: "="): next == UInt8(ascii: "=")
                    case UInt8(ascii: "<"): next == UInt8(ascii: "=") || next == UInt8(ascii: ">") || next == c
                    case UInt8(ascii: ">"): next == UInt8(ascii: "=") || next == c
                    default: next == c
                    }
                return (.punctuation, start + (pairs ? 2 : 1))
            case UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: ";"), UInt8(ascii: "+"), UInt8(ascii: "*"),
                UInt8(ascii: "%"), UInt8(ascii: ","), UInt8(ascii: "&"), UInt8(ascii: "~"):
                return (.punctuation, start + 1)
            default:
                return nil
            }
        }

        /// A word: the longest run of identifier characters.
        static func word(_ z: [UInt8], at start: Int) -> (kind: Kind?, end: Int)? {
            var i = start + 1
            while i < z.count, isIDChar(z[i]) { i += 1 }
            return (.word, i)
        }

        /// A number, as SQLite reads it (hex, digit separators, fraction, exponent); identifier characters straight
        /// after it make it illegal.
        static func number(_ z: [UInt8], at start: Int) -> (kind: Kind?, end: Int)? {
            func at(_ index: Int) -> UInt8 { index < z.count ? z[index] : 0 }
            var i = start
            func digits(_ accept: (UInt8) -> Bool) {
                while accept(at(i)) || at(i) == UInt8(ascii: "_") { i += 1 }
            }
            if z[start] == UInt8(ascii: "0"), at(start + 1) == UInt8(ascii: "x") || at(start + 1) == UInt8(ascii: "X"),
                isHexDigit(at(start + 2))
            {
                i = start + 3
                digits(isHexDigit)
            } else {
                digits(isDigit)
                if at(i) == UInt8(ascii: ".") {
                    i += 1
                    digits(isDigit)
                }
                if at(i) == UInt8(ascii: "e") || at(i) == UInt8(ascii: "E"),
                    isDigit(at(i + 1))
                        || ((at(i + 1) == UInt8(ascii: "+") || at(i + 1) == UInt8(ascii: "-")) && isDigit(at(i + 2)))
                {
                    i += 2
                    digits(isDigit)
                }
            }
            guard !isIDChar(at(i)) else { return nil }
            return (.number, i)
        }
    }
}
