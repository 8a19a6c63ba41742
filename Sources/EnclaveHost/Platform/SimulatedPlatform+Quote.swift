internal import Attestation
internal import Crypto
internal import EnclaveCore
internal import X509

extension SimulatedPlatform {
    /// The simulated root CA (PEM): the trust anchor for this platform's quotes.
    /// - Throws: When the platform's state can't be read or created (see ``open(directory:)``).
    public func rootCertificatePEM() throws -> String {
        try pki().rootCertificate.serializeAsPEM().pemString
    }

    /// Remote evidence for an enclave: an SGX DCAP ECDSA quote v3, laid out as Intel's, for `identity` and
    /// `reportData`, signed by the simulated attestation key and certified by the simulated PCK chain.
    package func quote(for identity: EnclaveIdentity, reportData: [UInt8]) throws -> [UInt8] {
        guard reportData.count == 64 else { throw EnclaveError.malformedInput("report data must be 64 bytes") }
        let pki = try pki()
        let header = DCAPQuote.Header(
            version: 3,
            teeType: DCAPQuote.teeTypeSGX,
            qeSVN: pki.qeSVN,
            pceSVN: UInt16(pki.extensions.pceSVN),
            userData: pki.extensions.ppid + [UInt8](repeating: 0, count: 4)
        )
        let body = DCAPQuote.Body.sgx(
            try Self.reportBody(
                cpuSVN: pki.extensions.cpuSVN,
                debug: identity.isDebug,
                mrEnclave: identity.uniqueID,
                mrSigner: identity.signerID,
                productID: identity.productID,
                securityVersion: identity.securityVersion,
                reportData: reportData
            )
        )
        let signature = try pki.attestationKey.signature(for: DCAPQuote.signedBytes(header: header, body: body))
        let attestationKey = Array(pki.attestationKey.publicKey.rawRepresentation)
        let authenticationData = Array(0..<32).map(UInt8.init)
        let binding = Array(SHA256.hash(data: attestationKey + authenticationData)) + [UInt8](repeating: 0, count: 32)
        // The simulated quoting enclave has the identity of Intel's (signer, product, INIT and PROVISIONKEY set, not
        // debug), which verifiers pin; its measurement is its own.
        let qeReport = try Self.reportBody(
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
        if let cached = qeReportSignature.withLock({ $0 }), cached.report == qeReport.bytes,
            cached.pckKey == pckPublicKey
        {
            qeSignature = cached.signature
        } else {
            qeSignature = Array(try pki.pckKey.signature(for: qeReport.bytes).rawRepresentation)
            qeReportSignature.withLock { $0 = (qeReport.bytes, pckPublicKey, qeSignature) }
        }
        return DCAPQuote.serialize(
            header: header,
            body: body,
            signature: Array(signature.rawRepresentation),
            attestationKey: attestationKey,
            qeReport: qeReport,
            qeReportSignature: qeSignature,
            qeAuthenticationData: authenticationData,
            certification: DCAPQuote.CertificationData(type: 5, contents: Array(try pki.chainPEM.utf8))
        )
    }

    /// An `sgx_report_body_t` (384 bytes): INIT and MODE64BIT set, XFRM x87 and SSE.
    static func reportBody(
        cpuSVN: [UInt8],
        debug: Bool,
        provisionKey: Bool = false,
        mrEnclave: Digest32,
        mrSigner: Digest32,
        productID: UInt16,
        securityVersion: UInt16,
        reportData: [UInt8]
    ) throws -> SGXReportBody {
        try SGXReportBody(
            cpuSVN: cpuSVN,
            attributes: SGXReportBody.attributes(
                flags: 0x05 | (debug ? 0x02 : 0) | (provisionKey ? 0x10 : 0),  // INIT | MODE64BIT, DEBUG, PROVISIONKEY
                xfrm: 0x03  // x87, SSE
            ),
            mrEnclave: mrEnclave,
            mrSigner: mrSigner,
            isvProductID: productID,
            isvSVN: securityVersion,
            reportData: reportData
        )
    }
}

extension SimulatedPlatform {
    /// The platform's identity and TCB level, as its PCK certificate states them.
    public struct Info: Sendable {
        /// The 6-byte FMSPC (family-model-stepping-platform-custom SKU) that selects the TCB info in the collateral.
        public var fmspc: [UInt8]
        /// The 2-byte ID of the provisioning certification enclave.
        public var pceID: [UInt8]
        /// The 16-byte CPU security version (the TCB components) the platform reports.
        public var cpuSVN: [UInt8]
        /// The PCE's security version number.
        public var pceSVN: Int
        /// The simulated quoting enclave's security version number, matched against the QE identity.
        public var qeSVN: UInt16
    }

    /// The platform's identity and TCB level.
    /// - Throws: When the platform's state can't be read or created (see ``open(directory:)``).
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
