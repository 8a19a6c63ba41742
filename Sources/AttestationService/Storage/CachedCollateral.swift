public import Foundation

/// One piece of collateral as a PCCS served it (TCB info, QE identity, a CRL): the response body, the issuer chain
/// from its header, and the dates it is valid between. It is served until `nextUpdate`, never after.
public struct CachedCollateral: Hashable, Sendable {
    /// The response body exactly as served; its signature is checked by the verifier with every quote, not here.
    public var body: [UInt8]
    /// PEM (URL-decoded), empty for the root CA CRL.
    public var issuerChain: String
    /// `issueDate` (TCB info, QE identity) or `thisUpdate` (CRLs).
    public var issued: Date
    /// `nextUpdate` of the piece: after it the copy is never served.
    public var nextUpdate: Date
    /// When this copy was fetched.
    public var fetched: Date

    /// A cached piece.
    ///
    /// - Parameters:
    ///   - body: The response body.
    ///   - issuerChain: The PEM issuer chain from the response header (empty for the root CA CRL).
    ///   - issued: Its `issueDate` or `thisUpdate`.
    ///   - nextUpdate: Its `nextUpdate`.
    ///   - fetched: When it was fetched.
    public init(body: [UInt8], issuerChain: String, issued: Date, nextUpdate: Date, fetched: Date) {
        self.body = body
        self.issuerChain = issuerChain
        self.issued = issued
        self.nextUpdate = nextUpdate
        self.fetched = fetched
    }
}
