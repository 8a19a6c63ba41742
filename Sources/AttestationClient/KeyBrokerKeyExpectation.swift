public import AttestationAPI

/// What a client expects of the broker key it encrypts data keys to
/// (``KeyBrokerClient/encryptionKey(name:version:expecting:)``): the key's origin and the thumbprint of its public
/// part. A broker whose administrator put another key under the name (a new version of its own as the newest) is
/// refused before anything is encrypted.
///
/// The origin is what the broker says; the thumbprint is checked on the public key this client encrypts to, so it
/// holds even when the broker's host answers for the broker: pin it when you know the owner's key.
public struct KeyBrokerKeyExpectation: Hashable, Sendable {
    /// The origin the key must have (`nil`: any, as long as every version of the name has the same).
    public var origin: KeyOrigin?
    /// The RFC 7638 thumbprint (base64url SHA-256) the key's public part must have
    /// (``KeyBrokerClient/jwkThumbprint(_:)``); `nil`: not checked. AES keys have no public part: a thumbprint refuses
    /// them.
    public var thumbprint: String?

    /// An expectation with the members given (none: only that a name's versions share one origin).
    public init(origin: KeyOrigin? = nil, thumbprint: String? = nil) {
        self.origin = origin
        self.thumbprint = thumbprint
    }
}
