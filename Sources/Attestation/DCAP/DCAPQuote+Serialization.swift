import EnclaveCore

extension DCAPQuote.Header {
    /// A header. `qeSVN` and `pceSVN` are the quoting enclave's and PCE's SVNs in version 3, reserved later.
    public init(
        version: UInt16,
        teeType: UInt32,
        qeSVN: UInt16,
        pceSVN: UInt16,
        qeVendorID: [UInt8] = DCAPQuote.intelQEVendorID,
        userData: [UInt8]
    ) {
        self.init(
            version: version,
            attestationKeyType: 2,
            teeType: teeType,
            qeSVN: qeSVN,
            pceSVN: pceSVN,
            qeVendorID: qeVendorID,
            userData: userData
        )
    }

    /// The 48 bytes of the header.
    public func serialized() -> [UInt8] {
        var writer = ByteWriter()
        writer.integer(version)
        writer.integer(attestationKeyType)
        writer.integer(teeType)
        writer.integer(qeSVN)
        writer.integer(pceSVN)
        writer.append(qeVendorID)
        writer.append(userData)
        return writer.bytes
    }
}

extension DCAPQuote.CertificationData {
    /// Certification data of `type` (5: the PEM PCK chain, leaf first).
    public init(type: UInt16, contents data: [UInt8]) {
        self.init(type: type, data: data)
    }
}

extension DCAPQuote {
    /// What the attestation key signs: the header, in version 5 the body descriptor, and the body.
    public static func signedBytes(header: Header, body: Body) -> [UInt8] {
        var writer = ByteWriter()
        writer.append(header.serialized())
        let bodyBytes: [UInt8]
        switch body {
        case .sgx(let report): bodyBytes = report.serialized()
        case .td(let report): bodyBytes = report.serialized()
        }
        if header.version == 5 {
            switch body {
            case .sgx: writer.integer(UInt16(1))
            case .td(let report): writer.integer(UInt16(report.teeTCBSVN2 == nil ? 2 : 3))
            }
            writer.integer(UInt32(bodyBytes.count))
        }
        writer.append(bodyBytes)
        return writer.bytes
    }

    /// A quote's bytes from its parts, laid out as Intel's quote library writes them: version 3 with the QE report
    /// certification data inline, versions 4 and 5 with it nested in certification data of type 6. Parsing them
    /// gives back these parts; ``serialized()`` of a parsed quote gives back its bytes.
    public static func serialize(
        header: Header,
        body: Body,
        signature: [UInt8],
        attestationKey: [UInt8],
        qeReport: SGXReportBody,
        qeReportSignature: [UInt8],
        qeAuthenticationData: [UInt8],
        certification: CertificationData
    ) -> [UInt8] {
        var qe = ByteWriter()
        qe.append(qeReport.serialized())
        qe.append(qeReportSignature)
        qe.integer(UInt16(qeAuthenticationData.count))
        qe.append(qeAuthenticationData)
        qe.integer(certification.type)
        qe.integer(UInt32(certification.data.count))
        qe.append(certification.data)

        var signatureData = ByteWriter()
        signatureData.append(signature)
        signatureData.append(attestationKey)
        if header.version == 3 {
            signatureData.append(qe.bytes)
        } else {
            signatureData.integer(UInt16(6))
            signatureData.integer(UInt32(qe.bytes.count))
            signatureData.append(qe.bytes)
        }
        var quote = ByteWriter()
        quote.append(signedBytes(header: header, body: body))
        quote.integer(UInt32(signatureData.bytes.count))
        quote.append(signatureData.bytes)
        return quote.bytes
    }

    /// The encoding of the parts: equal to ``bytes`` (the parser keeps no padding and refuses non-zero reserved
    /// fields).
    public func serialized() -> [UInt8] {
        Self.serialize(
            header: header,
            body: body,
            signature: signature,
            attestationKey: attestationKey,
            qeReport: qeReport,
            qeReportSignature: qeReportSignature,
            qeAuthenticationData: qeAuthenticationData,
            certification: certification
        )
    }
}
