public import Foundation

/// One piece of collateral as a PCCS served it (TCB info, QE identity, a CRL): the response body, the issuer chain
/// from its header, and the dates it is valid between. It is served until `nextUpdate`, never after.
public struct CachedCollateral: Hashable, Sendable {
    public var body: [UInt8]
    /// PEM (URL-decoded), empty for the root CA CRL.
    public var issuerChain: String
    /// `issueDate` (TCB info, QE identity) or `thisUpdate` (CRLs).
    public var issued: Date
    public var nextUpdate: Date
    /// When this copy was fetched.
    public var fetched: Date

    public init(body: [UInt8], issuerChain: String, issued: Date, nextUpdate: Date, fetched: Date) {
        self.body = body
        self.issuerChain = issuerChain
        self.issued = issued
        self.nextUpdate = nextUpdate
        self.fetched = fetched
    }
}
