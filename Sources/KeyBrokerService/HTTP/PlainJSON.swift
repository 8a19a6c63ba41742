/// JSON text made by concatenation for the release path's two documents whose strings need no escaping (the common
/// case: a JWS is base64url and dots; claims are hexadecimal digests, numbers and names): the answer
/// `{"value":"…"}` and the audit record's claims. The bytes are those `WireJSON` (`JSONEncoder`, sorted keys,
/// slashes unescaped) writes; a string with a quote, a backslash or a control character, or a non-ASCII member name
/// (whose order `JSONEncoder` decides), is answered nil and left to the caller's encoder.
enum PlainJSON {
    /// Whether `JSONEncoder` writes `text` as is between its quotes: no `"`, `\` or control character in it.
    static func isPlain(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
    }

    /// `{"value":"<value>"}`, or nil when `value` needs escaping.
    static func answer(_ value: String) -> String? {
        guard isPlain(value) else { return nil }
        return #"{"value":""# + value + #""}"#
    }

    /// An object of string members, names in the order of their UTF-8 bytes; nil when a name is not ASCII or any
    /// string needs escaping.
    static func object(_ members: [String: String]) -> String? {
        var names: [(text: String, bytes: [UInt8])] = []
        names.reserveCapacity(members.count)
        var size = 2
        for (name, value) in members {
            guard name.utf8.allSatisfy({ $0 < 0x80 }), isPlain(name), isPlain(value) else { return nil }
            names.append((name, Array(name.utf8)))
            size += name.utf8.count + value.utf8.count + 6
        }
        names.sort { $0.bytes.lexicographicallyPrecedes($1.bytes) }
        var text = "{"
        text.reserveCapacity(size)
        for (index, name) in names.enumerated() {
            if index > 0 { text += "," }
            text += "\"" + name.text + "\":\"" + (members[name.text] ?? "") + "\""
        }
        return text + "}"
    }
}
