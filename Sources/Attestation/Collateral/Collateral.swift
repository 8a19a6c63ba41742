public import EnclaveCore
internal import Foundation
internal import SwiftASN1
public import X509

/// What a DCAP verifier needs besides the quote: TCB info and QE identity with their signatures and issuer chains,
/// and the CRLs. The signed JSON is kept as its exact bytes.
public struct Collateral: Sendable {
    public var tcbInfoBytes: [UInt8]
    public var tcbInfoSignature: [UInt8]
    public var tcbInfoIssuerChain: [Certificate]
    public var qeIdentityBytes: [UInt8]
    public var qeIdentitySignature: [UInt8]
    public var qeIdentityIssuerChain: [Certificate]
    public var rootCACRL: [UInt8]
    public var pckCRL: [UInt8]
    public var pckCRLIssuerChain: [Certificate]

    /// Parse the single-file JSON bundle in the layout of the dcap-qvl project (`QuoteCollateralV3`): the signed
    /// JSON as strings, signatures and CRLs in hexadecimal, issuer chains in PEM.
    public init(dcapQVLJSON bytes: [UInt8]) throws(EnclaveError) {
        guard bytes.count <= 1 << 20 else { throw .limitExceeded("collateral bundle larger than 1 MiB") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw .malformedInput("collateral is not a JSON object")
        }
        func string(_ key: String) throws(EnclaveError) -> String {
            guard let value = object[key] as? String else { throw .malformedInput("collateral lacks \(key)") }
            return value
        }
        func hex(_ key: String) throws(EnclaveError) -> [UInt8] {
            guard let value = Hex.decode(try string(key)) else { throw .malformedInput("\(key) is not hexadecimal") }
            return value
        }
        func chain(_ key: String) throws(EnclaveError) -> [Certificate] {
            let text = try string(key)
            do {
                return try PEMDocument.parseMultiple(pemString: text).map { try Certificate(pemDocument: $0) }
            } catch {
                throw .malformedInput("\(key) is not a PEM certificate chain")
            }
        }
        tcbInfoBytes = Array(try string("tcb_info").utf8)
        tcbInfoSignature = try hex("tcb_info_signature")
        tcbInfoIssuerChain = try chain("tcb_info_issuer_chain")
        qeIdentityBytes = Array(try string("qe_identity").utf8)
        qeIdentitySignature = try hex("qe_identity_signature")
        qeIdentityIssuerChain = try chain("qe_identity_issuer_chain")
        rootCACRL = try hex("root_ca_crl")
        pckCRL = try hex("pck_crl")
        pckCRLIssuerChain = try chain("pck_crl_issuer_chain")
    }

    /// Parse Intel's `2019-05-15T00:00:00Z` dates.
    static func parseDate(_ text: String) -> Date? {
        try? Date(text, strategy: .iso8601)
    }
}
