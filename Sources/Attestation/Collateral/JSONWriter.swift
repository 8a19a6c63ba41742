internal import Foundation

/// A compact JSON writer that keeps the order fields are written in (Intel's signed documents have a fixed key
/// order, which `JSONSerialization` does not keep).
struct JSONWriter {
    private(set) var bytes: [UInt8] = []

    /// An object's fields, separated by commas.
    struct Object {
        fileprivate var writer: JSONWriter
        fileprivate var first = true

        mutating func field(_ name: String, _ value: (inout JSONWriter) -> Void) {
            if !first { writer.bytes.append(UInt8(ascii: ",")) }
            first = false
            writer.string(name)
            writer.bytes.append(UInt8(ascii: ":"))
            value(&writer)
        }
    }

    mutating func object(_ fields: (inout Object) -> Void) {
        bytes.append(UInt8(ascii: "{"))
        var object = Object(writer: self)
        fields(&object)
        self = object.writer
        bytes.append(UInt8(ascii: "}"))
    }

    mutating func array<Element>(_ elements: [Element], _ write: (inout JSONWriter, Element) -> Void) {
        bytes.append(UInt8(ascii: "["))
        for (index, element) in elements.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            write(&self, element)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    mutating func integer(_ value: Int) { bytes += Array(String(value).utf8) }

    /// A string, escaped as RFC 8259 requires.
    mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes += Array("\\\"".utf8)
            case UInt8(ascii: "\\"): bytes += Array("\\\\".utf8)
            case 0..<0x20: bytes += Array(String(format: "\\u%04x", Int(byte)).utf8)
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// Upper-case hexadecimal, as Intel writes identifiers and masks.
    mutating func hex(_ value: [UInt8]) { string(value.map { String(format: "%02X", $0) }.joined()) }

    /// ISO 8601 in UTC to the second: `2025-06-19T10:56:11Z`.
    mutating func date(_ value: Date) { string(value.formatted(Date.ISO8601FormatStyle())) }
}
