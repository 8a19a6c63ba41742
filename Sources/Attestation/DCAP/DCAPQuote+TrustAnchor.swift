public import X509

extension DCAPQuote {
    /// A trust anchor, and whether it is a simulation root.
    public struct TrustAnchor: Sendable {
        public var certificate: Certificate
        public var simulated: Bool

        public init(certificate: Certificate, simulated: Bool) {
            self.certificate = certificate
            self.simulated = simulated
        }
    }
}
