internal import Crypto

/// What the owner of an imported key (bring your own key) means the broker to store, bound into the wrapped payload:
/// the key's name, type, operations, attributes, the exact release-policy bytes the broker enclave stores, and the
/// authority pins the owner verified the broker enclave trusts. The owner wraps ``payload(_:)`` (``magic``, the
/// ``digest``, then the key material) to the broker's import key; the broker enclave recomputes the digest from the
/// request it receives and its own current pins, and refuses a mismatch. So the broker's host cannot replay the
/// wrapped key under another name or policy, nor import it into an instance that trusts another certificate.
public struct ImportIntent: Hashable, Sendable {
    /// The domain-separation label hashed first.
    public static let label = "enclavekit.keybroker.import.v1"
    /// The bytes the wrapped payload starts with.
    public static let magic: [UInt8] = Array("EKI1".utf8)
    /// The digest's length (SHA-256).
    public static let digestLength = 32

    /// The key's name in the broker.
    public var name: String
    /// The broker's key type (`BrokerKeyType`'s raw value: `oct-256`, `RSA-2048`, `RSA-3072`, `EC-P-256`,
    /// `EC-P-384`).
    public var type: String
    /// The key operations the request names (hashed sorted; empty for the type's defaults).
    public var operations: [String]
    /// Whether the key is exportable.
    public var exportable: Bool
    /// Whether the release policy is immutable.
    public var immutable: Bool
    /// The release policy document, exactly the bytes the broker enclave stores; `nil` for none.
    public var releasePolicy: [UInt8]?
    /// The authority pins: normalized authority URL to its signing certificates' thumbprints.
    public var pins: [String: Set<String>]

    /// An intent from its parts.
    public init(
        name: String,
        type: String,
        operations: [String],
        exportable: Bool,
        immutable: Bool,
        releasePolicy: [UInt8]?,
        pins: [String: Set<String>]
    ) {
        self.name = name
        self.type = type
        self.operations = operations
        self.exportable = exportable
        self.immutable = immutable
        self.releasePolicy = releasePolicy
        self.pins = pins
    }

    /// SHA-256 of the canonical encoding: every field length-prefixed (4 bytes, big endian), lists counted, the
    /// operations sorted, the pins ordered by URL with their thumbprints sorted.
    public var digest: [UInt8] {
        var encoding: [UInt8] = []
        func field(_ bytes: [UInt8]) {
            count(bytes.count)
            encoding += bytes
        }
        func count(_ value: Int) {
            let length = UInt32(truncatingIfNeeded: value)
            encoding += [
                UInt8(length >> 24 & 0xff), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff),
            ]
        }
        field(Array(Self.label.utf8))
        field(Array(name.utf8))
        field(Array(type.utf8))
        let sortedOperations = operations.sorted()
        count(sortedOperations.count)
        for operation in sortedOperations { field(Array(operation.utf8)) }
        field([exportable ? 1 : 0])
        field([immutable ? 1 : 0])
        if let releasePolicy {
            field([1])
            field(releasePolicy)
        } else {
            field([0])
        }
        let authorities = pins.filter { !$0.value.isEmpty }.sorted {
            Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8))
        }
        count(authorities.count)
        for (url, thumbprints) in authorities {
            field(Array(url.utf8))
            let sorted = thumbprints.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            count(sorted.count)
            for thumbprint in sorted { field(Array(thumbprint.utf8)) }
        }
        return Array(SHA256.hash(data: encoding))
    }

    /// What the owner wraps: ``magic``, the ``digest``, then `material`.
    public func payload(_ material: [UInt8]) -> [UInt8] {
        Self.magic + digest + material
    }

    /// The digest and the key material of an unwrapped payload; `nil` without the ``magic`` prefix or with no
    /// material after the digest.
    public static func split(_ payload: [UInt8]) -> (digest: [UInt8], material: [UInt8])? {
        let header = magic.count + digestLength
        guard payload.count > header, payload.starts(with: magic) else { return nil }
        return (Array(payload[magic.count..<header]), Array(payload[header...]))
    }
}
