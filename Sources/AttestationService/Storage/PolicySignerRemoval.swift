/// What ``ServiceStore/removePolicySigner(_:at:)`` did.
public enum PolicySignerRemoval: String, Sendable {
    /// It was a signer and is not any more.
    case removed
    /// It was not a signer.
    case absent
    /// It is the last signer: kept, since removing it would leave policies changeable by nobody.
    case last
}
