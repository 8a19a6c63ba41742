public import EnclaveCore
internal import Foundation
public import X509

extension Collateral {
    /// Collateral from the answers of a PCCS or Intel PCS (API v4): the TCB info and QE identity response bodies
    /// (`{"tcbInfo": {…}, "signature": "hex"}`, `{"enclaveIdentity": {…}, "signature": "hex"}`), the issuer chains
    /// from the response headers (PEM, plain or URL-encoded) and the CRLs (DER, hexadecimal DER or PEM). The signed
    /// objects are kept as their exact bytes. Nothing is verified here:
    /// ``DCAPQuote/verify(anchors:collateral:at:cache:)`` checks every signature, chain and date.
    /// - Throws: `EnclaveError` — `limitExceeded` for an oversized response or chain, `malformedInput` when a body is
    ///   not a signed object or a chain is not (URL-encoded) PEM. Nothing is verified here.
    public init(
        tcbInfoResponse: [UInt8],
        tcbInfoIssuerChain: String,
        qeIdentityResponse: [UInt8],
        qeIdentityIssuerChain: String,
        pckCRL: [UInt8],
        pckCRLIssuerChain: String,
        rootCACRL: [UInt8]
    ) throws(EnclaveError) {
        let tcb = try Self.pcsSignedObject(tcbInfoResponse, key: "tcbInfo")
        let qe = try Self.pcsSignedObject(qeIdentityResponse, key: "enclaveIdentity")
        tcbInfoBytes = tcb.object
        tcbInfoSignature = tcb.signature
        qeIdentityBytes = qe.object
        qeIdentitySignature = qe.signature
        self.tcbInfoIssuerChain = try Self.pcsIssuerChain(tcbInfoIssuerChain, what: "the TCB info issuer chain")
        self.qeIdentityIssuerChain = try Self.pcsIssuerChain(
            qeIdentityIssuerChain,
            what: "the QE identity issuer chain"
        )
        self.pckCRLIssuerChain = try Self.pcsIssuerChain(pckCRLIssuerChain, what: "the PCK CRL issuer chain")
        self.pckCRL = pckCRL
        self.rootCACRL = rootCACRL
    }

    /// Split a PCS response body `{"KEY": {…}, "signature": "hex"}` (`tcbInfo` or `enclaveIdentity`) into the exact
    /// bytes of the signed object and the signature.
    public static func pcsSignedObject(
        _ body: [UInt8],
        key: String
    ) throws(EnclaveError) -> (object: [UInt8], signature: [UInt8]) {
        guard body.count <= 1 << 20 else { throw .limitExceeded("\(key) response larger than 1 MiB") }
        return try signedObject(body, key: key)
    }

    /// A PEM certificate chain as a PCS response header carries it (URL-encoded) or as plain PEM.
    public static func pcsIssuerChain(
        _ text: String,
        what: String = "issuer chain"
    ) throws(EnclaveError)
        -> [Certificate]
    {
        guard text.utf8.count <= 64 << 10 else { throw .limitExceeded("\(what) larger than 64 KiB") }
        var decoded = text
        if text.contains("%") {
            guard let plain = text.removingPercentEncoding else {
                throw .malformedInput("\(what) is not valid URL encoding")
            }
            decoded = plain
        }
        do {
            return try PEMCertificates.parse(Array(decoded.utf8))
        } catch {
            throw .malformedInput("\(what) is not a PEM certificate chain")
        }
    }
}
