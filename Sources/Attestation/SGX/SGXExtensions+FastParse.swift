extension SGXExtensions {
    /// The DER of the extension's OIDs: 1.2.840.113741.1.13.1, then one arc (entries), or 2 and one arc (TCB).
    private static let oidPrefix: [UInt8] = [0x2A, 0x86, 0x48, 0x86, 0xF8, 0x4D, 0x01, 0x0D, 0x01]

    /// The fields read directly from the layout Intel writes — a SEQUENCE of (OID, value) SEQUENCEs, the TCB entry a
    /// SEQUENCE of (OID, INTEGER or OCTET STRING) SEQUENCEs — with every DER rule swift-asn1's parser applies to it:
    /// low tag numbers only, definite lengths in the fewest octets, each node inside its parent exactly, no trailing
    /// bytes, OIDs byte for byte Intel's, INTEGERs and ENUMERATEDs primitive, non-empty, in the fewest octets.
    /// `nil` for anything else, valid or not (then `asn1Fields(_:)` reads it, or refuses it): this reader never
    /// refuses, so what is accepted and every error message stay swift-asn1's.
    static func fastFields(_ bytes: ArraySlice<UInt8>) -> Fields? {
        bytes.withUnsafeBufferPointer { buffer -> Fields? in
            FastReader(bytes: buffer).fields()
        }
    }

    private struct FastReader {
        let bytes: UnsafeBufferPointer<UInt8>

        /// A node: its identifier octet and its contents' range.
        struct Node {
            let tag: UInt8
            let start: Int
            let end: Int
        }

        /// The node at `position`, which must end by `limit`; `nil` for a high tag number, the reserved tag 0, an
        /// indefinite, non-minimal or over-long length, or one that runs past `limit`.
        func node(at position: Int, limit: Int) -> Node? {
            guard position + 2 <= limit else { return nil }
            let tag = bytes[position]
            // High-tag-number form, and [UNIVERSAL 0] (primitive or constructed): left to swift-asn1.
            guard tag & 0x1F != 0x1F, tag & 0xDF != 0 else { return nil }
            let first = bytes[position + 1]
            var start = position + 2
            let length: Int
            switch first {
            case 0..<0x80:
                length = Int(first)
            case 0x81:
                guard start < limit else { return nil }
                length = Int(bytes[start])
                start += 1
                guard length >= 0x80 else { return nil }
            case 0x82:
                guard start + 1 < limit else { return nil }
                length = Int(bytes[start]) << 8 | Int(bytes[start + 1])
                start += 2
                guard length >= 0x100 else { return nil }
            default:
                return nil
            }
            guard length <= limit - start else { return nil }
            return Node(tag: tag, start: start, end: start + length)
        }

        /// Whether `start..<end` is a run of well-formed nodes (constructed ones checked inside), `depth` deep.
        func wellFormed(_ start: Int, _ end: Int, depth: Int) -> Bool {
            guard depth < 8 else { return false }
            var position = start
            while position < end {
                guard let child = node(at: position, limit: end) else { return false }
                if child.tag & 0x20 != 0, !wellFormed(child.start, child.end, depth: depth + 1) { return false }
                position = child.end
            }
            return true
        }

        /// The last arc of an OID node under the extension's (`extra` further arcs before it, e.g. 2 for TCB).
        func arc(_ node: Node, extra: UInt8?) -> Int? {
            let prefix = SGXExtensions.oidPrefix
            let count = prefix.count + (extra == nil ? 1 : 2)
            guard node.tag == 0x06, node.end - node.start == count else { return nil }
            for index in 0..<prefix.count where bytes[node.start + index] != prefix[index] { return nil }
            if let extra, bytes[node.start + prefix.count] != extra { return nil }
            let last = bytes[node.end - 1]
            return last < 0x80 ? Int(last) : nil
        }

        func octets(_ node: Node) -> [UInt8]? {
            guard node.tag == 0x04 else { return nil }
            return Array(UnsafeBufferPointer(rebasing: bytes[node.start..<node.end]))
        }

        /// A one- or two-octet INTEGER (or ENUMERATED) in the fewest octets, as a signed number.
        func integer(_ node: Node, tag: UInt8) -> Int? {
            guard node.tag == tag else { return nil }
            switch node.end - node.start {
            case 1:
                return Int(Int8(bitPattern: bytes[node.start]))
            case 2:
                let high = bytes[node.start]
                let low = bytes[node.start + 1]
                guard !(high == 0xFF && low >= 0x80), !(high == 0 && low < 0x80) else { return nil }
                return Int(Int16(bitPattern: UInt16(high) << 8 | UInt16(low)))
            default:
                return nil
            }
        }

        /// A SEQUENCE of exactly an OID and one value, at `position` inside `limit`.
        func pair(at position: Int, limit: Int) -> (entry: Node, oid: Node, value: Node)? {
            guard let entry = node(at: position, limit: limit), entry.tag == 0x30,
                let oid = node(at: entry.start, limit: entry.end),
                let value = node(at: oid.end, limit: entry.end), value.end == entry.end
            else { return nil }
            return (entry, oid, value)
        }

        func fields() -> Fields? {
            guard let root = node(at: 0, limit: bytes.count), root.tag == 0x30, root.end == bytes.count else {
                return nil
            }
            var result = Fields()
            var position = root.start
            while position < root.end {
                guard let (entry, oid, value) = pair(at: position, limit: root.end),
                    let arc = arc(oid, extra: nil)
                else { return nil }
                switch arc {
                case 1:
                    guard let octets = octets(value) else { return nil }
                    result.ppid = octets
                case 3:
                    guard let octets = octets(value) else { return nil }
                    result.pceID = octets
                case 4:
                    guard let octets = octets(value) else { return nil }
                    result.fmspc = octets
                case 5:
                    guard let number = integer(value, tag: 0x0A) else { return nil }
                    result.sgxType = number
                case 2:
                    guard value.tag == 0x30, tcb(value, into: &result) else { return nil }
                case 0, 6, 7:
                    // Skipped as swift-asn1's reader skips them, once its parse found them well formed.
                    if value.tag & 0x20 != 0, !wellFormed(value.start, value.end, depth: 3) { return nil }
                default:
                    return nil
                }
                position = entry.end
            }
            return result
        }

        /// The TCB entry's items.
        func tcb(_ sequence: Node, into result: inout Fields) -> Bool {
            var position = sequence.start
            while position < sequence.end {
                guard let (entry, oid, value) = pair(at: position, limit: sequence.end),
                    let arc = arc(oid, extra: 2)
                else { return false }
                switch arc {
                case 1...16:
                    guard let number = integer(value, tag: 0x02) else { return false }
                    result.components[arc - 1] = number
                case 17:
                    guard let number = integer(value, tag: 0x02) else { return false }
                    result.pceSVN = number
                case 18:
                    guard let octets = octets(value) else { return false }
                    result.cpuSVN = octets
                case 0:
                    if value.tag & 0x20 != 0, !wellFormed(value.start, value.end, depth: 5) { return false }
                default:
                    return false
                }
                position = entry.end
            }
            return true
        }
    }
}
