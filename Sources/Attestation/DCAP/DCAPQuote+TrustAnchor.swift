public import X509

extension DCAPQuote {
    /// A trust anchor, and whether it is a simulation root.
    public struct TrustAnchor: Sendable {
        /// The root certificate a PCK chain must end at (Intel's SGX root CA, or a simulated platform's root).
        public var certificate: Certificate
        /// Whether this is a simulation root: claims of quotes chaining to it say `simulated`, which ``EvidencePolicy``
        /// refuses unless ``EvidencePolicy/allowSimulated``.
        public var simulated: Bool

        /// Trust `certificate` as a root.
        ///
        /// - Parameters:
        ///   - certificate: The root certificate.
        ///   - simulated: Whether it is a simulation root. Mark every root that is not Intel's as simulated: the claims
        ///     then say so, and the default policy refuses them.
        public init(certificate: Certificate, simulated: Bool) {
            self.certificate = certificate
            self.simulated = simulated
        }
    }
}
