public import EnclaveCore

/// Attestation authorities with the SHA-256 thumbprints of their pinned token signing certificates: what the broker
/// enclave trusts (bound into its evidence, `"authorities"` of its runtime data) and what a key may be released under
/// (recorded in the key's at-rest envelope when the key, or its policy, is made).
///
/// A thumbprint is the certificate's `kid` as the attestation service names it: base64url (no padding) of SHA-256 of
/// the certificate's DER, 43 characters. Canonical: authorities ordered by URL (normalized as release policies compare
/// them), each authority once, its thumbprints ordered and distinct; so one set of pins has one encoding.
public struct AuthorityPins: Hashable, Sendable, CustomStringConvertible {
    /// One authority's pins.
    public struct Authority: Hashable, Sendable {
        /// The authority's URL, normalized (scheme and host lower case, no default port, no trailing slash).
        public let url: String
        /// The thumbprints of its pinned signing certificates, ordered.
        public let thumbprints: [String]
    }

    /// The most authorities a pin set holds.
    public static let maximumAuthorities = 64
    /// The most thumbprints one authority has.
    public static let maximumThumbprints = 64
    /// The longest authority URL, in UTF-8 bytes.
    public static let maximumURLLength = 1024
    /// A thumbprint's length: base64url of 32 bytes, unpadded.
    public static let thumbprintLength = 43

    /// The authorities, ordered by URL.
    public let authorities: [Authority]

    /// Pins from normalized URLs and their thumbprints, put in canonical order (an authority with no thumbprint is
    /// left out: nothing verifies under it).
    ///
    /// - Throws: `EnclaveError.malformedInput` beyond the limits (``maximumAuthorities``, ``maximumThumbprints``,
    ///   ``maximumURLLength``) or for a thumbprint that is not 43 base64url characters.
    public init(_ pins: [String: Set<String>]) throws(EnclaveError) {
        let authorities = pins.filter { !$0.value.isEmpty }.map {
            Authority(url: $0.key, thumbprints: $0.value.sorted())
        }
        guard authorities.count <= Self.maximumAuthorities else {
            throw .malformedInput("more than \(Self.maximumAuthorities) pinned authorities")
        }
        for authority in authorities {
            guard !authority.url.isEmpty, authority.url.utf8.count <= Self.maximumURLLength,
                authority.thumbprints.count <= Self.maximumThumbprints
            else { throw .malformedInput("a pinned authority URL is empty or too long, or has too many thumbprints") }
            for thumbprint in authority.thumbprints {
                guard thumbprint.utf8.count == Self.thumbprintLength, thumbprint.utf8.allSatisfy(Self.isBase64URL)
                else {
                    throw .malformedInput("a thumbprint is not 43 base64url characters (SHA-256 of a certificate)")
                }
            }
        }
        self.authorities = authorities.sorted { $0.url.utf8.lexicographicallyPrecedes($1.url.utf8) }
    }

    /// No pins.
    public static let none = AuthorityPins(canonical: [])

    /// The thumbprints pinned for the authority at `url` (normalized), `nil` when it has none.
    public func thumbprints(for url: String) -> [String]? {
        authorities.first { $0.url == url }?.thumbprints
    }

    /// Whether a token of the authority at `url` (normalized) signed with the certificate `thumbprint` is covered.
    public func covers(url: String, thumbprint: String) -> Bool {
        thumbprints(for: url)?.contains(thumbprint) == true
    }

    /// `url: thumbprint, …; url: …` (for logs and audit records; nothing here is secret).
    public var description: String {
        authorities.isEmpty
            ? "(none)"
            : authorities.map { "\($0.url): \($0.thumbprints.joined(separator: ", "))" }.joined(separator: "; ")
    }

    // MARK: Binary form (the key envelope's header)

    /// The canonical bytes: `u16` authority count, then per authority `u16` URL length, URL, `u16` thumbprint count,
    /// thumbprints (43 bytes each); little endian.
    public var bytes: [UInt8] {
        var writer = ByteWriter()
        writer.integer(UInt16(authorities.count))
        for authority in authorities {
            writer.integer(UInt16(authority.url.utf8.count))
            writer.append(authority.url.utf8)
            writer.integer(UInt16(authority.thumbprints.count))
            for thumbprint in authority.thumbprints { writer.append(thumbprint.utf8) }
        }
        return writer.bytes
    }

    /// Pins read from ``bytes``, refused unless they are exactly a canonical encoding within the limits.
    ///
    /// - Throws: `EnclaveError.malformedInput` naming what is wrong.
    public init(bytes: [UInt8]) throws(EnclaveError) {
        var reader = ByteReader(bytes)
        self = try Self.read(&reader)
        try reader.expectEnd("authority pins")
    }

    /// Pins read from `reader` (which may hold more after them).
    package static func read(_ reader: inout ByteReader) throws(EnclaveError) -> AuthorityPins {
        let count = Int(try reader.integer(UInt16.self, "authority count"))
        guard count <= maximumAuthorities else {
            throw .malformedInput("\(count) pinned authorities, more than \(maximumAuthorities)")
        }
        var authorities: [Authority] = []
        for _ in 0..<count {
            let length = Int(try reader.integer(UInt16.self, "authority URL length"))
            guard length > 0, length <= maximumURLLength,
                let url = String(validating: try reader.take(length, "authority URL"), as: UTF8.self)
            else { throw .malformedInput("a pinned authority URL is empty, too long or not UTF-8") }
            if let previous = authorities.last, !previous.url.utf8.lexicographicallyPrecedes(url.utf8) {
                throw .malformedInput("the pinned authorities are not in canonical order")
            }
            let thumbprintCount = Int(try reader.integer(UInt16.self, "thumbprint count"))
            guard thumbprintCount > 0, thumbprintCount <= maximumThumbprints else {
                throw .malformedInput("\(thumbprintCount) thumbprints for one authority (1 to \(maximumThumbprints))")
            }
            var thumbprints: [String] = []
            for _ in 0..<thumbprintCount {
                let bytes = try reader.take(thumbprintLength, "thumbprint")
                guard bytes.allSatisfy(Self.isBase64URL), let thumbprint = String(validating: bytes, as: UTF8.self)
                else { throw .malformedInput("a pinned thumbprint is not base64url") }
                if let previous = thumbprints.last, previous >= thumbprint {
                    throw .malformedInput("the thumbprints of \(url) are not in canonical order")
                }
                thumbprints.append(thumbprint)
            }
            authorities.append(Authority(url: url, thumbprints: thumbprints))
        }
        return AuthorityPins(canonical: authorities)
    }

    private init(canonical: [Authority]) {
        authorities = canonical
    }

    static func isBase64URL(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default: false
        }
    }
}
