/// Tokens of the ``AttestationPolicy`` language: identifiers, strings, numbers, symbols, each with its line and
/// column; `//` and `/* */` comments and whitespace skipped.
enum PolicyLexer {
    enum Kind: Equatable {
        case identifier(String)
        case string(String)
        case number(String)
        case symbol(String)
        case end
    }

    struct Token {
        var kind: Kind
        var line: Int
        var column: Int
    }

    /// The tokens of `scalars`, ending with ``Kind/end``; comments and whitespace dropped.
    static func tokenize(_ scalars: [Unicode.Scalar]) throws(PolicySyntaxError) -> [Token] {
        var tokens: [Token] = []
        var position = 0
        var line = 1
        var column = 1
        func advance() {
            if scalars[position] == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
            position += 1
        }
        let twoCharacter: Set<String> = ["==", "!=", "<=", ">=", "=>", "&&"]
        while position < scalars.count {
            let scalar = scalars[position]
            if scalar.properties.isWhitespace {
                advance()
                continue
            }
            // Comments: // to the end of the line, /* … */.
            if scalar == "/", position + 1 < scalars.count, scalars[position + 1] == "/" {
                while position < scalars.count, scalars[position] != "\n" { advance() }
                continue
            }
            if scalar == "/", position + 1 < scalars.count, scalars[position + 1] == "*" {
                let (startLine, startColumn) = (line, column)
                advance()
                advance()
                while position < scalars.count,
                    !(scalars[position] == "*" && position + 1 < scalars.count && scalars[position + 1] == "/")
                {
                    advance()
                }
                guard position < scalars.count else {
                    throw PolicySyntaxError(line: startLine, column: startColumn, message: "unterminated comment")
                }
                advance()
                advance()
                continue
            }
            let (startLine, startColumn) = (line, column)
            if scalar == "\"" {
                advance()
                var value = ""
                while true {
                    guard position < scalars.count, scalars[position] != "\n" else {
                        throw PolicySyntaxError(line: startLine, column: startColumn, message: "unterminated string")
                    }
                    let character = scalars[position]
                    advance()
                    if character == "\"" { break }
                    if character == "\\" {
                        guard position < scalars.count else {
                            throw PolicySyntaxError(
                                line: startLine,
                                column: startColumn,
                                message: "unterminated string"
                            )
                        }
                        let escaped = scalars[position]
                        guard escaped == "\"" || escaped == "\\" else {
                            throw PolicySyntaxError(
                                line: line,
                                column: column,
                                message: "unknown escape \\\(escaped)"
                            )
                        }
                        value.unicodeScalars.append(escaped)
                        advance()
                    } else {
                        value.unicodeScalars.append(character)
                    }
                }
                tokens.append(Token(kind: .string(value), line: startLine, column: startColumn))
                continue
            }
            if scalar.properties.isAlphabetic || scalar == "_" || scalar == "$" {
                var word = ""
                while position < scalars.count,
                    scalars[position].properties.isAlphabetic || scalars[position].properties.numericType != nil
                        || ["_", "$", "-"].contains(scalars[position])
                {
                    word.unicodeScalars.append(scalars[position])
                    advance()
                }
                tokens.append(Token(kind: .identifier(word), line: startLine, column: startColumn))
                continue
            }
            if scalar.properties.numericType != nil
                || (scalar == "-" && position + 1 < scalars.count
                    && scalars[position + 1].properties.numericType != nil)
            {
                var number = String(scalar)
                advance()
                while position < scalars.count,
                    scalars[position].properties.numericType != nil || scalars[position] == "."
                {
                    number.unicodeScalars.append(scalars[position])
                    advance()
                }
                tokens.append(Token(kind: .number(number), line: startLine, column: startColumn))
                continue
            }
            if position + 1 < scalars.count {
                let pair = String(scalar) + String(scalars[position + 1])
                if twoCharacter.contains(pair) {
                    advance()
                    advance()
                    tokens.append(Token(kind: .symbol(pair), line: startLine, column: startColumn))
                    continue
                }
            }
            guard "=;:,[](){}<>.".unicodeScalars.contains(scalar) else {
                throw PolicySyntaxError(
                    line: startLine,
                    column: startColumn,
                    message: "unexpected character '\(scalar)'"
                )
            }
            advance()
            tokens.append(Token(kind: .symbol(String(scalar)), line: startLine, column: startColumn))
        }
        tokens.append(Token(kind: .end, line: line, column: column))
        return tokens
    }
}
