internal import Crypto
internal import EnclaveCore
internal import Foundation
internal import KeyBrokerInterface

/// The at-rest envelope: a key's bytes form encrypted under the master key with AES-256-GCM; the associated data
/// binds the key's name, version, type, operations and attributes (with the release policy's SHA-256) and the
/// authority pins in the blob's header, so a blob can't be moved to another key, version or policy, the host can't
/// flip `exportable` or `immutable`, and it can't change which signing certificates the key is released under.
///
/// Blob (format 2): `2` ‖ pins (``AuthorityPins/bytes``) ‖ 12-byte nonce ‖ ciphertext ‖ 16-byte tag. The associated
/// data is the key's fields under the label `enclavekit.keybroker.key.v2`, then the blob's header (format byte and
/// pins) as stored. Format 1 (no pins) is refused, `KeyBlobOutdated`: such a key must be re-created or re-imported
/// (no format-1 key was ever deployed).
enum KeyEnvelope {
    static let version = StoredKey.blobFormat

    static func associatedData(
        name: String,
        version: String,
        type: BrokerKeyType,
        operations: [String],
        attributes: BrokerKeyAttributes,
        header: [UInt8]
    ) -> [UInt8] {
        var writer = ByteWriter()
        for field in ["enclavekit.keybroker.key.v2", name, version, type.rawValue, operations.joined(separator: ",")] {
            writer.integer(UInt32(field.utf8.count))
            writer.append(field.utf8)
        }
        writer.append([attributes.exportable ? 1 : 0, attributes.immutable ? 1 : 0])
        writer.append([attributes.releasePolicy == nil ? 0 : 1])
        writer.append(SHA256.hash(data: attributes.releasePolicy ?? []))
        writer.integer(UInt32(header.count))
        writer.append(header)
        return writer.bytes
    }

    /// The blob's header: the format byte and the pins.
    static func header(_ pins: AuthorityPins) -> [UInt8] { [version] + pins.bytes }

    static func seal(
        _ material: KeyMaterial,
        master: SymmetricKey,
        name: String,
        version keyVersion: String,
        operations: [String],
        attributes: BrokerKeyAttributes,
        pins: AuthorityPins
    ) throws(KeyBrokerError) -> [UInt8] {
        let header = header(pins)
        let associated = associatedData(
            name: name,
            version: keyVersion,
            type: material.type,
            operations: operations,
            attributes: attributes,
            header: header
        )
        do {
            let box = try AES.GCM.seal(material.bytes, using: master, authenticating: associated)
            guard let combined = box.combined else { throw KeyBrokerError(KeyBrokerError.invalidRequest, "") }
            return header + Array(combined)
        } catch { throw KeyBrokerError(KeyBrokerError.invalidRequest, "the key could not be sealed") }
    }

    /// The key's secret part and the pins its envelope authenticates.
    ///
    /// - Throws: ``KeyBrokerError`` `KeyBlobOutdated` for a format-1 blob, `KeyBlobInvalid` for anything that does
    ///   not open under the master key with the key's fields and the header as stored.
    static func open(_ key: StoredKey, master: SymmetricKey) throws(KeyBrokerError) -> (KeyMaterial, AuthorityPins) {
        let invalid = KeyBrokerError(
            BrokerRefusal.Code.keyBlobInvalid,
            "the key's blob does not open under the master key with its name, version, attributes and authority pins"
        )
        if key.blob.first == 1 {
            throw KeyBrokerError(
                BrokerRefusal.Code.keyBlobOutdated,
                "the key's blob is in at-rest format 1 (before authority pins): re-create or re-import the key"
            )
        }
        guard key.blob.first == version else { throw invalid }
        var reader = ByteReader(Array(key.blob.dropFirst()))
        guard let pins = try? AuthorityPins.read(&reader) else { throw invalid }
        let headerLength = 1 + reader.position
        guard key.blob.count >= headerLength + 12 + 16 + 1 else { throw invalid }
        let associated = associatedData(
            name: key.name,
            version: key.version,
            type: key.type,
            operations: key.keyOperations,
            attributes: key.attributes,
            header: Array(key.blob[..<headerLength])
        )
        let bytes: [UInt8]
        do {
            let box = try AES.GCM.SealedBox(combined: key.blob[headerLength...])
            bytes = Array(try AES.GCM.open(box, using: master, authenticating: associated))
        } catch { throw invalid }
        return (try KeyMaterial(bytes: bytes, type: key.type), pins)
    }
}
