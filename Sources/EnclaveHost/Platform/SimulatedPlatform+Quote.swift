internal import Attestation
internal import Crypto
internal import EnclaveCore
internal import X509

extension SimulatedPlatform {
    /// The simulated root CA (PEM): the trust anchor for this platform's quotes.
    public func rootCertificatePEM() throws -> String {
        try pki().rootCertificate.serializeAsPEM().pemString
    }

    /// Remote evidence for an enclave: an SGX DCAP ECDSA quote v3, laid out as Intel's, for `identity` and
    /// `reportData`, signed by the simulated attestation key and certified by the simulated PCK chain.
    package func quote(for identity: EnclaveIdentity, reportData: [UInt8]) throws -> [UInt8] {
        guard reportData.count == 64 else { throw EnclaveError.malformedInput("report data must be 64 bytes") }
        let pki = try pki()
        var header = ByteWriter()
        header.integer(UInt16(3))
        header.integer(UInt16(2))  // ECDSA-256-with-P-256
        header.integer(UInt32(0))  // SGX
        header.integer(pki.qeSVN)
        header.integer(UInt16(pki.extensions.pceSVN))
        header.append(DCAPQuote.intelQEVendorID)
        header.append(pki.extensions.ppid)
        header.append([UInt8](repeating: 0, count: 4))

        let body = Self.reportBody(
            cpuSVN: pki.extensions.cpuSVN,
            debug: identity.isDebug,
            mrEnclave: identity.uniqueID,
            mrSigner: identity.signerID,
            productID: identity.productID,
            securityVersion: identity.securityVersion,
            reportData: reportData
        )
        let signed = header.bytes + body
        let signature = try pki.attestationKey.signature(for: signed).rawRepresentation
        let attestationKey = Array(pki.attestationKey.publicKey.rawRepresentation)
        let authenticationData = Array(0..<32).map(UInt8.init)
        let binding = Array(SHA256.hash(data: attestationKey + authenticationData)) + [UInt8](repeating: 0, count: 32)
        // The simulated quoting enclave has the identity of Intel's (signer, product, INIT and PROVISIONKEY set, not
        // debug), which verifiers pin; its measurement is its own.
        let qeReport = Self.reportBody(
            cpuSVN: pki.extensions.cpuSVN,
            debug: false,
            provisionKey: true,
            mrEnclave: try Digest32(bytes: SHA256.hash(data: Array("EnclaveKit simulated quoting enclave".utf8))),
            mrSigner: try Digest32(bytes: QuotingEnclaveIdentity.intelQE.mrSigner),
            productID: QuotingEnclaveIdentity.intelQE.isvProductID,
            securityVersion: pki.qeSVN,
            reportData: binding
        )
        let pckPublicKey = Array(pki.pckKey.publicKey.rawRepresentation)
        let qeSignature: [UInt8]
        if let cached = qeReportSignature.withLock({ $0 }), cached.report == qeReport, cached.pckKey == pckPublicKey {
            qeSignature = cached.signature
        } else {
            qeSignature = Array(try pki.pckKey.signature(for: qeReport).rawRepresentation)
            qeReportSignature.withLock { $0 = (qeReport, pckPublicKey, qeSignature) }
        }
        let certification = Array(try pki.chainPEM.utf8)

        var signatureData = ByteWriter()
        signatureData.append(signature)
        signatureData.append(attestationKey)
        signatureData.append(qeReport)
        signatureData.append(qeSignature)
        signatureData.integer(UInt16(authenticationData.count))
        signatureData.append(authenticationData)
        signatureData.integer(UInt16(5))
        signatureData.integer(UInt32(certification.count))
        signatureData.append(certification)

        var quote = ByteWriter()
        quote.append(signed)
        quote.integer(UInt32(signatureData.bytes.count))
        quote.append(signatureData.bytes)
        return quote.bytes
    }

    /// An `sgx_report_body_t` (384 bytes).
    static func reportBody(
        cpuSVN: [UInt8],
        debug: Bool,
        provisionKey: Bool = false,
        mrEnclave: Digest32,
        mrSigner: Digest32,
        productID: UInt16,
        securityVersion: UInt16,
        reportData: [UInt8]
    ) -> [UInt8] {
        var body = ByteWriter()
        body.append(cpuSVN)
        body.integer(UInt32(0))  // MISCSELECT
        body.append([UInt8](repeating: 0, count: 12 + 16))  // reserved, ISVEXTPRODID
        // INIT | MODE64BIT, DEBUG, PROVISIONKEY
        body.integer(UInt64(0x05 | (debug ? 0x02 : 0) | (provisionKey ? 0x10 : 0)))
        body.integer(UInt64(0x03))  // XFRM: x87, SSE
        body.append(mrEnclave.bytes)
        body.append([UInt8](repeating: 0, count: 32))
        body.append(mrSigner.bytes)
        body.append([UInt8](repeating: 0, count: 32 + 64))  // reserved, CONFIGID
        body.integer(productID)
        body.integer(securityVersion)
        body.integer(UInt16(0))  // CONFIGSVN
        body.append([UInt8](repeating: 0, count: 42 + 16))  // reserved, ISVFAMILYID
        body.append(reportData)
        return body.bytes
    }
}

extension SimulatedPlatform {
    /// The platform's identity and TCB level, as its PCK certificate states them.
    public struct Info: Sendable {
        public var fmspc: [UInt8]
        public var pceID: [UInt8]
        public var cpuSVN: [UInt8]
        public var pceSVN: Int
        public var qeSVN: UInt16
    }

    /// The platform's identity and TCB level.
    public func platformInfo() throws -> Info {
        let pki = try pki()
        return Info(
            fmspc: pki.extensions.fmspc,
            pceID: pki.extensions.pceID,
            cpuSVN: pki.extensions.cpuSVN,
            pceSVN: pki.extensions.pceSVN,
            qeSVN: pki.qeSVN
        )
    }
}
