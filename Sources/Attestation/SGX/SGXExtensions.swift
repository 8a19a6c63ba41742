public import EnclaveCore
package import SwiftASN1

/// The Intel SGX extension (OID 1.2.840.113741.1.13.1) of a PCK certificate: platform identity and the TCB level
/// the certificate was issued for.
public struct SGXExtensions: Hashable, Sendable {
    /// OID of the extension.
    package static let oid: ASN1ObjectIdentifier = [1, 2, 840, 113_741, 1, 13, 1]

    /// The platform provisioning ID (PPID, 16 bytes): identifies the platform, so treat it as personal data.
    public var ppid: [UInt8]
    /// The 16 SGX TCB components (CPUSVN components as Intel lists them).
    public var tcbComponents: [Int]
    /// The PCE SVN of the TCB level the certificate was issued for.
    public var pceSVN: Int
    /// The CPUSVN (16 bytes) of the TCB level the certificate was issued for.
    public var cpuSVN: [UInt8]
    /// The PCE ID (2 bytes); TCB info must be for the same one.
    public var pceID: [UInt8]
    /// The platform family (FMSPC, 6 bytes) that selects the TCB info.
    public var fmspc: [UInt8]
    /// 0 standard, 1 scalable, 2 scalable with integrity.
    public var sgxType: Int

    /// Create the extension's values (the simulated platform writes them into its PCK certificates).
    ///
    /// - Parameters:
    ///   - ppid: The platform provisioning ID (16 bytes).
    ///   - tcbComponents: The 16 SGX TCB component SVNs.
    ///   - pceSVN: The PCE SVN.
    ///   - cpuSVN: The CPUSVN (16 bytes).
    ///   - pceID: The PCE ID (2 bytes).
    ///   - fmspc: The FMSPC (6 bytes).
    ///   - sgxType: 0 standard, 1 scalable, 2 scalable with integrity.
    public init(
        ppid: [UInt8],
        tcbComponents: [Int],
        pceSVN: Int,
        cpuSVN: [UInt8],
        pceID: [UInt8],
        fmspc: [UInt8],
        sgxType: Int
    ) {
        self.ppid = ppid
        self.tcbComponents = tcbComponents
        self.pceSVN = pceSVN
        self.cpuSVN = cpuSVN
        self.pceID = pceID
        self.fmspc = fmspc
        self.sgxType = sgxType
    }

    private static func child(_ arc: UInt) -> ASN1ObjectIdentifier {
        children[Int(arc)]
    }

    private static func tcbChild(_ arc: UInt) -> ASN1ObjectIdentifier {
        tcbChildren[Int(arc)]
    }

    // Built once: parsing compares against them for every entry of every PCK certificate.
    private static let children: [ASN1ObjectIdentifier] = (0...7).map {
        try! ASN1ObjectIdentifier(elements: [1, 2, 840, 113_741, 1, 13, 1, UInt($0)])  // swift-format-ignore
    }
    private static let tcbChildren: [ASN1ObjectIdentifier] = (0...18).map {
        try! ASN1ObjectIdentifier(elements: [1, 2, 840, 113_741, 1, 13, 1, 2, UInt($0)])  // swift-format-ignore
    }
    /// The last arc of each TCB entry's OID (one lookup per entry instead of a comparison with every OID).
    private static let tcbArcs: [ASN1ObjectIdentifier: Int] = Dictionary(
        uniqueKeysWithValues: tcbChildren.enumerated().map { ($0.element, $0.offset) }
    )

    /// Parse the extension's value (DER). Unknown entries (platform instance, configuration) are skipped; the
    /// required ones must all be present with the right sizes.
    ///
    /// The extension as Intel writes it is read by a direct reader of that layout (`fastFields`); anything else it
    /// leaves to swift-asn1's parser, which also gives every refusal. Both read the same values (a differential test
    /// of mutated real extensions holds them to it).
    /// - Throws: `EnclaveError` `malformedInput` when the extension does not parse or lacks a required field.
    public init(derEncoded bytes: ArraySlice<UInt8>) throws(EnclaveError) {
        let fields: Fields
        if let fast = Self.fastFields(bytes) {
            fields = fast
        } else {
            fields = try Self.asn1Fields(bytes)
        }
        guard let ppid = fields.ppid, ppid.count == 16, let pceSVN = fields.pceSVN, let cpuSVN = fields.cpuSVN,
            cpuSVN.count == 16, let pceID = fields.pceID, pceID.count == 2, let fmspc = fields.fmspc,
            fmspc.count == 6, let sgxType = fields.sgxType, fields.components.allSatisfy({ $0 != nil })
        else {
            throw .malformedInput("the PCK certificate's SGX extension lacks a required field or has a wrong size")
        }
        self.init(
            ppid: ppid,
            tcbComponents: fields.components.map { $0 ?? 0 },
            pceSVN: pceSVN,
            cpuSVN: cpuSVN,
            pceID: pceID,
            fmspc: fmspc,
            sgxType: sgxType
        )
    }

    /// What the extension holds, before the required fields are checked (a later entry for the same field wins).
    struct Fields: Equatable {
        var ppid: [UInt8]?
        var components = [Int?](repeating: nil, count: 16)
        var pceSVN: Int?
        var cpuSVN: [UInt8]?
        var pceID: [UInt8]?
        var fmspc: [UInt8]?
        var sgxType: Int?
    }

    /// The extension's fields read with swift-asn1 (every DER rule checked).
    static func asn1Fields(_ bytes: ArraySlice<UInt8>) throws(EnclaveError) -> Fields {
        var result = Fields()
        do {
            let root = try DER.parse(bytes)
            try DER.sequence(root, identifier: .sequence) { entries in
                while let entry = entries.next() {
                    try DER.sequence(entry, identifier: .sequence) { fields in
                        let oid = try ASN1ObjectIdentifier(derEncoded: &fields)
                        guard let value = fields.next() else { throw ASN1Error.invalidASN1Object(reason: "no value") }
                        switch oid {
                        case Self.child(1): result.ppid = try Self.octets(value)
                        case Self.child(3): result.pceID = try Self.octets(value)
                        case Self.child(4): result.fmspc = try Self.octets(value)
                        case Self.child(5): result.sgxType = try Self.integer(value, identifier: .enumerated)
                        case Self.child(2):
                            try DER.sequence(value, identifier: .sequence) { tcbEntries in
                                while let tcbEntry = tcbEntries.next() {
                                    try DER.sequence(tcbEntry, identifier: .sequence) { pair in
                                        let arc = try ASN1ObjectIdentifier(derEncoded: &pair)
                                        guard let item = pair.next() else {
                                            throw ASN1Error.invalidASN1Object(reason: "no TCB value")
                                        }
                                        switch Self.tcbArcs[arc] {
                                        case .some(let index) where (1...16).contains(index):
                                            result.components[index - 1] = try Self.integer(item, identifier: .integer)
                                        case 17: result.pceSVN = try Self.integer(item, identifier: .integer)
                                        case 18: result.cpuSVN = try Self.octets(item)
                                        default: break
                                        }
                                    }
                                }
                            }
                        default: break
                        }
                    }
                }
            }
        } catch {
            throw .malformedInput("the PCK certificate's SGX extension does not parse: \(error)")
        }
        return result
    }

    /// The extension's value, DER-encoded.
    public func derEncoded() throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { entries in
            try Self.entry(&entries, Self.child(1)) { try $0.serialize(ASN1OctetString(contentBytes: ppid[...])) }
            try Self.entry(&entries, Self.child(2)) { tcb in
                try tcb.appendConstructedNode(identifier: .sequence) { items in
                    for (index, value) in tcbComponents.enumerated() {
                        try Self.entry(&items, Self.tcbChild(UInt(index + 1))) { try $0.serialize(value) }
                    }
                    try Self.entry(&items, Self.tcbChild(17)) { try $0.serialize(pceSVN) }
                    try Self.entry(&items, Self.tcbChild(18)) {
                        try $0.serialize(ASN1OctetString(contentBytes: cpuSVN[...]))
                    }
                }
            }
            try Self.entry(&entries, Self.child(3)) { try $0.serialize(ASN1OctetString(contentBytes: pceID[...])) }
            try Self.entry(&entries, Self.child(4)) { try $0.serialize(ASN1OctetString(contentBytes: fmspc[...])) }
            try Self.entry(&entries, Self.child(5)) { entry in
                try sgxType.serialize(into: &entry, withIdentifier: .enumerated)
            }
        }
        return serializer.serializedBytes
    }

    private static func entry(
        _ serializer: inout DER.Serializer,
        _ oid: ASN1ObjectIdentifier,
        _ value: (inout DER.Serializer) throws -> Void
    ) throws {
        try serializer.appendConstructedNode(identifier: .sequence) { pair in
            try pair.serialize(oid)
            try value(&pair)
        }
    }

    private static func octets(_ node: ASN1Node) throws -> [UInt8] {
        Array(try ASN1OctetString(derEncoded: node).bytes)
    }

    private static func integer(_ node: ASN1Node, identifier: ASN1Identifier) throws -> Int {
        guard node.identifier == identifier, case .primitive(let content) = node.content else {
            throw ASN1Error.unexpectedFieldType(node.identifier)
        }
        // Re-tag as INTEGER to reuse swift-asn1's strict integer rules (minimal, in range).
        var serializer = DER.Serializer()
        serializer.appendPrimitiveNode(identifier: .integer) { $0.append(contentsOf: content) }
        return try Int(derEncoded: try DER.parse(serializer.serializedBytes))
    }
}
