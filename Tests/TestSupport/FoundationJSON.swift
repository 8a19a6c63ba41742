public import Foundation

/// The independent reference the JSON readers' differential tests compare against (``JSONCorpus``): Foundation's
/// `JSONSerialization`, and how to compare its reading with a reader's value, whatever that value's type. Each suite
/// keeps only its own rules (which kinds of value it has, how its numbers must come out).
public enum FoundationJSON {
    /// Foundation's reading of `document` (a scalar document allowed), or nil when Foundation refuses it.
    public static func read(_ document: [UInt8]) -> Any? {
        try? JSONSerialization.jsonObject(with: Data(document), options: .fragmentsAllowed)
    }

    /// Whether Foundation read `object` as the string `text`: the same UTF-8 bytes, not only equal as Swift strings
    /// (which would take canonically equivalent spellings as one).
    public static func isString(_ object: Any, _ text: String) -> Bool {
        (object as? String).map { Array($0.utf8) == Array(text.utf8) } ?? false
    }

    /// Whether Foundation read `object` as the boolean `flag` (a boolean, not the number 0 or 1).
    public static func isBool(_ object: Any, _ flag: Bool) -> Bool {
        guard let number = object as? NSNumber, isBoolean(number) else { return false }
        return number.boolValue == flag
    }

    /// Foundation's reading of `object` as a number (nil for anything else, booleans included).
    public static func number(_ object: Any) -> NSNumber? {
        guard let number = object as? NSNumber, !isBoolean(number) else { return nil }
        return number
    }

    /// Whether Foundation read `object` as an array of `items.count` elements, each of which `matches` its item.
    public static func isArray<Value>(_ object: Any, _ items: [Value], _ matches: (Value, Any) -> Bool) -> Bool {
        guard let array = object as? [Any], array.count == items.count else { return false }
        return zip(items, array).allSatisfy { matches($0, $1) }
    }

    /// Whether Foundation read `object` as an object with exactly the keys of `members`, each value of which
    /// `matches` its member.
    public static func isObject<Value>(
        _ object: Any,
        _ members: [String: Value],
        _ matches: (Value, Any) -> Bool
    ) -> Bool {
        guard let dictionary = object as? [String: Any], dictionary.count == members.count else { return false }
        return members.allSatisfy { key, member in
            dictionary[key].map { matches(member, $0) } ?? false
        }
    }

    /// The depth of Foundation's reading, scalars counting as a level (a scalar document is 0 deep).
    public static func depth(_ object: Any) -> Int {
        if let array = object as? [Any] { return 1 + (array.map(depth).max() ?? -1) }
        if let dictionary = object as? [String: Any] {
            return 1 + (dictionary.values.map(depth).max() ?? -1)
        }
        return 0
    }

    /// Whether Foundation's number is a boolean (`JSONSerialization` reads `true` and `false` as `NSNumber`s of
    /// type `c`).
    private static func isBoolean(_ number: NSNumber) -> Bool {
        String(cString: number.objCType) == "c"
    }
}
