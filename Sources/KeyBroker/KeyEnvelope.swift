internal import Crypto
internal import EnclaveCore
internal import Foundation
internal import KeyBrokerInterface

/// The at-rest envelope: a key's bytes form encrypted under the master key with AES-256-GCM; the associated data
/// binds the key's name, version, type, operations and attributes (with the release policy's SHA-256), so a blob
/// can't be moved to another key, version or policy, and the host can't flip `exportable` or `immutable`.
///
/// Blob: version byte `1` ‖ 12-byte nonce ‖ ciphertext ‖ 16-byte tag.
enum KeyEnvelope {
    static let version: UInt8 = 1

    static func associatedData(
        name: String,
        version: String,
        type: BrokerKeyType,
        operations: [String],
        attributes: BrokerKeyAttributes
    ) -> [UInt8] {
        var writer = ByteWriter()
        for field in ["enclavekit.keybroker.key.v1", name, version, type.rawValue, operations.joined(separator: ",")] {
            writer.integer(UInt32(field.utf8.count))
            writer.append(field.utf8)
        }
        writer.append([attributes.exportable ? 1 : 0, attributes.immutable ? 1 : 0])
        writer.append([attributes.releasePolicy == nil ? 0 : 1])
        writer.append(SHA256.hash(data: attributes.releasePolicy ?? []))
        return writer.bytes
    }

    static func associatedData(_ key: StoredKey) -> [UInt8] {
        associatedData(
            name: key.name,
            version: key.version,
            type: key.type,
            operations: key.keyOperations,
            attributes: key.attributes
        )
    }

    static func seal(
        _ material: KeyMaterial,
        master: SymmetricKey,
        associatedData: [UInt8]
    ) throws(KeyBrokerError)
        -> [UInt8]
    {
        do {
            let box = try AES.GCM.seal(material.bytes, using: master, authenticating: associatedData)
            guard let combined = box.combined else { throw KeyBrokerError(KeyBrokerError.invalidRequest, "") }
            return [version] + Array(combined)
        } catch { throw KeyBrokerError(KeyBrokerError.invalidRequest, "the key could not be sealed") }
    }

    static func open(_ key: StoredKey, master: SymmetricKey) throws(KeyBrokerError) -> KeyMaterial {
        let invalid = KeyBrokerError(
            BrokerRefusal.Code.keyBlobInvalid,
            "the key's blob does not open under the master key with its name, version and attributes"
        )
        guard key.blob.count > 1 + 12 + 16, key.blob.first == version else { throw invalid }
        let bytes: [UInt8]
        do {
            let box = try AES.GCM.SealedBox(combined: key.blob.dropFirst())
            bytes = Array(try AES.GCM.open(box, using: master, authenticating: associatedData(key)))
        } catch { throw invalid }
        return try KeyMaterial(bytes: bytes, type: key.type)
    }
}
