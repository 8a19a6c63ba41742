internal import Foundation
internal import SwiftASN1
internal import X509

extension CertificateRevocationList {
    /// The CRL read directly, in one pass over its DER, for the layout Intel's CAs write: the outer SEQUENCE of the
    /// `tbsCertList` SEQUENCE, an algorithm and a BIT STRING without unused bits; in `tbsCertList` a version 2 (or
    /// none), an algorithm, the issuer, `thisUpdate`, optionally `nextUpdate`, the revoked certificates and
    /// extensions. Every node of the whole tree is held to the DER rules swift-asn1's parser applies (low tag
    /// numbers, definite lengths in the fewest octets, each node inside its parent exactly, no trailing bytes); the
    /// issuer and the times are still read by swift-asn1 and swift-certificates from their own bytes, and each
    /// revoked serial is checked as swift-asn1 checks an unsigned INTEGER. `nil` for anything else, valid or not
    /// (then `asn1Parts(_:)` reads it, or refuses it): this reader never refuses, so what is accepted and every
    /// error message stay swift-asn1's. The per-entry cost is what it saves: a CRL lists hundreds of certificates.
    static func fastParts(_ der: [UInt8]) -> Parts? {
        der.withUnsafeBufferPointer { buffer -> Parts? in
            DERScanner(bytes: buffer, array: der).parts()
        }
    }
}

/// Nodes of a DER buffer, read under swift-asn1's DER rules; `nil` wherever the input leaves the common forms.
private struct DERScanner {
    let bytes: UnsafeBufferPointer<UInt8>
    let array: [UInt8]

    /// A node: its identifier octet, where it starts, and its contents' range.
    struct Node {
        let tag: UInt8
        let offset: Int
        let start: Int
        let end: Int
        var constructed: Bool { tag & 0x20 != 0 }
    }

    /// The node at `position`, which must end by `limit`; `nil` for a high tag number, the reserved tag 0, an
    /// indefinite, non-minimal or over-long length, or one that runs past `limit`.
    func node(at position: Int, limit: Int) -> Node? {
        guard position + 2 <= limit else { return nil }
        let tag = bytes[position]
        guard tag & 0x1F != 0x1F, tag & 0xDF != 0 else { return nil }
        let first = bytes[position + 1]
        var start = position + 2
        var length = 0
        switch first {
        case 0..<0x80:
            length = Int(first)
        case 0x81...0x83:
            let octets = Int(first & 0x7F)
            guard start + octets <= limit else { return nil }
            for index in 0..<octets { length = length << 8 | Int(bytes[start + index]) }
            start += octets
            // The fewest octets: the long form only from 128, and no leading zero octet.
            guard length >= 0x80, bytes[position + 2] != 0 else { return nil }
        default:
            return nil
        }
        guard length <= limit - start else { return nil }
        return Node(tag: tag, offset: position, start: start, end: start + length)
    }

    /// The children of `parent` (checked already: see `wellFormed(_:depth:)`).
    func children(_ parent: Node) -> [Node]? {
        var result: [Node] = []
        var position = parent.start
        while position < parent.end {
            guard let child = node(at: position, limit: parent.end) else { return nil }
            result.append(child)
            position = child.end
        }
        return result
    }

    /// Whether the contents of `parent` are a run of well-formed nodes, to the bottom.
    func wellFormed(_ parent: Node, depth: Int) -> Bool {
        guard depth < 16 else { return false }
        var position = parent.start
        while position < parent.end {
            guard let child = node(at: position, limit: parent.end) else { return false }
            if child.constructed, !wellFormed(child, depth: depth + 1) { return false }
            position = child.end
        }
        return true
    }

    /// The node's bytes (identifier, length and contents), parsed by swift-asn1 on their own.
    func asn1(_ node: Node) -> ASN1Node? {
        try? DER.parse(array[node.offset..<node.end])
    }

    func date(_ node: Node) -> Date? {
        guard node.tag == 0x17 || node.tag == 0x18, let parsed = asn1(node) else { return nil }
        return try? DERTime.date(parsed)
    }

    /// An unsigned INTEGER's magnitude (no leading zero octets), as swift-asn1 reads `ArraySlice<UInt8>`: primitive,
    /// not empty, in the fewest octets, not negative.
    func serial(_ node: Node) -> CertificateCache.DERKey? {
        guard node.tag == 0x02, node.end > node.start, bytes[node.start] & 0x80 == 0 else { return nil }
        if node.end - node.start > 1, bytes[node.start] == 0, bytes[node.start + 1] & 0x80 == 0 { return nil }
        var first = node.start
        while first < node.end, bytes[first] == 0 { first += 1 }
        return CertificateCache.DERKey(Array(UnsafeBufferPointer(rebasing: bytes[first..<node.end])))
    }

    func parts() -> CertificateRevocationList.Parts? {
        // The whole tree first, as swift-asn1's parser reads it before anything is looked at.
        guard let root = node(at: 0, limit: bytes.count), root.tag == 0x30, root.end == bytes.count,
            wellFormed(root, depth: 1), let outer = children(root), outer.count == 3, outer[0].tag == 0x30
        else { return nil }
        // The signature: a primitive BIT STRING with no unused bits.
        let bits = outer[2]
        guard bits.tag == 0x03, bits.end - bits.start >= 2, bytes[bits.start] == 0 else { return nil }
        let tbs = outer[0]
        guard var fields = children(tbs), !fields.isEmpty, fields[0].tag != 0x22 else { return nil }
        if fields[0].tag == 0x02 {
            // Version: v2 (1), as swift-asn1 reads it; any other spelling is left to it.
            guard fields[0].end - fields[0].start == 1, bytes[fields[0].start] == 1 else { return nil }
            fields.removeFirst()
        }
        // Algorithm, issuer, thisUpdate.
        guard fields.count >= 3, let issuerNode = asn1(fields[1]),
            let issuer = try? DistinguishedName(derEncoded: issuerNode), let thisUpdate = date(fields[2])
        else { return nil }
        var nextUpdate: Date?
        var serials = Set<CertificateCache.DERKey>()
        for item in fields.dropFirst(3) {
            switch item.tag {
            case 0x17, 0x18:
                guard let date = date(item) else { return nil }
                nextUpdate = date
            case 0x30:
                var position = item.start
                while position < item.end {
                    guard let entry = node(at: position, limit: item.end), entry.tag == 0x30,
                        let number = node(at: entry.start, limit: entry.end), let serial = serial(number)
                    else { return nil }
                    serials.insert(serial)
                    position = entry.end
                }
            default:
                // A primitive SEQUENCE or a constructed time: swift-asn1's reader refuses them; others are skipped.
                guard item.tag != 0x10, item.tag != 0x37, item.tag != 0x38 else { return nil }
            }
        }
        return CertificateRevocationList.Parts(
            issuer: issuer,
            thisUpdate: thisUpdate,
            nextUpdate: nextUpdate,
            serials: serials,
            signedBytes: Array(array[tbs.offset..<tbs.end]),
            signature: Array(array[bits.start + 1..<bits.end])
        )
    }
}
