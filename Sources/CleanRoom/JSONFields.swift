/// Reads the members of one JSON object by name and type, and refuses members nobody asked for.
///
/// Every document type of the clean room decodes through this, so an unknown field (a typo, or a field of a newer
/// version whose rule this version would silently not enforce) is always an error: call ``finish()`` last.
struct JSONFields {
    private let members: [String: CanonicalJSON]
    private let what: String
    private var used: Set<String> = []

    init(_ value: CanonicalJSON, _ what: String) throws(CleanRoomError) {
        guard case .object(let members) = value else { throw CleanRoomError(.malformed, "\(what) is not an object") }
        self.members = members
        self.what = what
    }

    private mutating func take(_ key: String) throws(CleanRoomError) -> CanonicalJSON {
        guard let value = members[key] else { throw CleanRoomError(.malformed, "\(what) has no \"\(key)\"") }
        used.insert(key)
        return value
    }

    func has(_ key: String) -> Bool { members[key] != nil }

    mutating func string(_ key: String, maxLength: Int = 4096) throws(CleanRoomError) -> String {
        guard case .string(let text) = try take(key) else {
            throw CleanRoomError(.malformed, "\(what).\(key) is not a string")
        }
        guard text.utf8.count <= maxLength else {
            throw CleanRoomError(.limitExceeded, "\(what).\(key) is longer than \(maxLength) bytes")
        }
        return text
    }

    mutating func integer(_ key: String, in range: ClosedRange<Int64>) throws(CleanRoomError) -> Int64 {
        guard case .integer(let number) = try take(key) else {
            throw CleanRoomError(.malformed, "\(what).\(key) is not an integer")
        }
        guard range.contains(number) else {
            throw CleanRoomError(.invalidContract, "\(what).\(key) = \(number) is outside \(range)")
        }
        return number
    }

    mutating func bool(_ key: String) throws(CleanRoomError) -> Bool {
        guard case .bool(let value) = try take(key) else {
            throw CleanRoomError(.malformed, "\(what).\(key) is not a boolean")
        }
        return value
    }

    mutating func array(_ key: String, maxCount: Int = 1024) throws(CleanRoomError) -> [CanonicalJSON] {
        guard case .array(let items) = try take(key) else {
            throw CleanRoomError(.malformed, "\(what).\(key) is not an array")
        }
        guard items.count <= maxCount else {
            throw CleanRoomError(.limitExceeded, "\(what).\(key) has more than \(maxCount) entries")
        }
        return items
    }

    mutating func strings(_ key: String, maxCount: Int = 1024) throws(CleanRoomError) -> [String] {
        var out: [String] = []
        for item in try array(key, maxCount: maxCount) {
            guard case .string(let text) = item, text.utf8.count <= 4096 else {
                throw CleanRoomError(.malformed, "\(what).\(key) holds something other than a short string")
            }
            out.append(text)
        }
        return out
    }

    mutating func object(_ key: String) throws(CleanRoomError) -> CanonicalJSON {
        let value = try take(key)
        guard case .object = value else { throw CleanRoomError(.malformed, "\(what).\(key) is not an object") }
        return value
    }

    /// Refuse any member that was not read.
    func finish() throws(CleanRoomError) {
        let unknown = Set(members.keys).subtracting(used)
        guard unknown.isEmpty else {
            throw CleanRoomError(
                .unknownField,
                "\(what) has unknown field(s): \(unknown.sorted().joined(separator: ", "))"
            )
        }
    }
}
