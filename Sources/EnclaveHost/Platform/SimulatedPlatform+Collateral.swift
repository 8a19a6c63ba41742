internal import Attestation
internal import Crypto
internal import EnclaveCore
public import Foundation
internal import SwiftASN1
internal import Synchronization
internal import X509

extension SimulatedPlatform {
    /// Advisory ID the simulated collateral lists for TCB levels below the up-to-date one.
    public static let simulatedAdvisory = "ENCLAVEKIT-SA-00001"

    /// Collateral for this platform's quotes, valid from `issued` for 30 days, as a JSON bundle in the dcap-qvl
    /// layout: TCB info and QE identity signed by the simulated TCB signing key, and CRLs signed by the simulated
    /// root CA and platform CA. Any DCAP verifier given the simulated root as trust anchor can use it.
    /// - Throws: When the platform's state can't be read or a signature can't be made.
    public func collateralJSON(issued: Date = Date()) throws -> [UInt8] {
        let pki = try pki()
        let next = issued.addingTimeInterval(Self.collateralValidity)
        let date = issued.formatted(Date.ISO8601FormatStyle())
        let upToDate = pki.tcb.upToDateComponents
        let older = upToDate.enumerated().map { $0.offset == 0 ? max(0, $0.element - 1) : $0.element }
        let pceSVN = pki.extensions.pceSVN
        let tcbInfo = TCBInfo(
            issueDate: issued,
            nextUpdate: next,
            fmspc: pki.extensions.fmspc,
            pceID: pki.extensions.pceID,
            tcbEvaluationDataNumber: 1,
            levels: [
                TCBInfo.Level(sgxComponents: upToDate, pceSVN: pceSVN, tcbDate: date, status: .upToDate),
                TCBInfo.Level(
                    sgxComponents: older,
                    pceSVN: pceSVN,
                    tcbDate: date,
                    status: .outOfDate,
                    advisoryIDs: [Self.simulatedAdvisory]
                ),
            ]
        )
        .jsonBytes()
        // The simulated quoting enclave stands in for Intel's: its identity is Intel's (the verifier pins it).
        let qe = QuotingEnclaveIdentity.intelQE
        let qeIdentity = QEIdentity(
            issueDate: issued,
            nextUpdate: next,
            tcbEvaluationDataNumber: 1,
            miscSelect: qe.miscSelect,
            miscSelectMask: qe.miscSelectMask,
            attributes: qe.attributes,
            attributesMask: qe.attributesMask,
            mrSigner: qe.mrSigner,
            isvProductID: Int(qe.isvProductID),
            levels: [QEIdentity.Level(isvSVN: Int(pki.qeSVN), status: .upToDate, advisoryIDs: [], tcbDate: date)]
        )
        .jsonBytes()
        let tcbChain = try [pki.tcbSigningCertificate, pki.rootCertificate].map { try $0.serializeAsPEM().pemString }
            .joined(separator: "\n")
        let pckCRLChain = try [pki.platformCACertificate, pki.rootCertificate].map { try $0.serializeAsPEM().pemString }
            .joined(separator: "\n")
        let rootCRL = try Self.crl(
            issuer: pki.rootCertificate,
            key: pki.rootKey,
            revoked: (pki.tcb.revokedPlatformCA == true ? [pki.platformCACertificate.serialNumber] : [])
                + (pki.tcb.revokedTCBSigning == true ? [pki.tcbSigningCertificate.serialNumber] : []),
            from: issued,
            to: next
        )
        let pckCRL = try Self.crl(
            issuer: pki.platformCACertificate,
            key: pki.platformCAKey,
            revoked: pki.tcb.revokedPCK ? [pki.pckCertificate.serialNumber] : [],
            from: issued,
            to: next
        )
        let bundle: [String: String] = [
            "tcb_info": String(decoding: tcbInfo, as: UTF8.self),
            "tcb_info_signature": Hex.encode(try pki.tcbSigningKey.signature(for: tcbInfo).rawRepresentation),
            "tcb_info_issuer_chain": tcbChain,
            "qe_identity": String(decoding: qeIdentity, as: UTF8.self),
            "qe_identity_signature": Hex.encode(try pki.tcbSigningKey.signature(for: qeIdentity).rawRepresentation),
            "qe_identity_issuer_chain": tcbChain,
            "root_ca_crl": Hex.encode(rootCRL),
            "pck_crl": Hex.encode(pckCRL),
            "pck_crl_issuer_chain": pckCRLChain,
        ]
        return Array(try JSONSerialization.data(withJSONObject: bundle, options: [.prettyPrinted, .sortedKeys]))
    }

    /// How long simulated collateral is valid (as Intel's TCB info and QE identity: 30 days).
    public static let collateralValidity: TimeInterval = 30 * 86400

    /// Collateral issued once per TCB state, by platform directory: the TCB state it was issued for, its issue
    /// date and its bytes.
    private static let issuedCollateral = Mutex<[String: (state: [UInt8], issued: Date, bytes: [UInt8])]>([:])

    /// Collateral valid at `time`, issued once per TCB state: the same bytes (and so the same signatures, which
    /// verifiers such as Attestation's `VerificationCache` key on) for every request until the TCB state changes
    /// (``setTCB(cpuSVN:pceSVN:upToDateComponents:revokePCK:revokePlatformCA:revokeTCBSigning:)``, a re-issued
    /// certificate) or `time` leaves its validity, then issued anew (a minute before `time`, for clock skew, and
    /// a day before it expires).
    /// - Throws: When the platform's state can't be read or a signature can't be made.
    public func collateralJSON(at time: Date) throws -> [UInt8] {
        let pki = try pki()
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var state = Array(try encoder.encode(pki.tcb))
        for certificate in [
            pki.rootCertificate, pki.platformCACertificate, pki.tcbSigningCertificate, pki.pckCertificate,
        ] {
            var serializer = DER.Serializer()
            try serializer.serialize(certificate)
            state += serializer.serializedBytes
        }
        let digest = Array(SHA256.hash(data: state))
        if let cached = Self.issuedCollateral.withLock({ $0[directory] }), cached.state == digest,
            time >= cached.issued, time < cached.issued.addingTimeInterval(Self.collateralValidity - 86400)
        {
            return cached.bytes
        }
        // Whole seconds: the documents state dates to the second.
        let issued = Date(timeIntervalSince1970: (time.timeIntervalSince1970 - 60).rounded(.down))
        let bytes = try collateralJSON(issued: issued)
        Self.issuedCollateral.withLock { $0[directory] = (digest, issued, bytes) }
        return bytes
    }

    /// Change the platform's TCB state: its own level (CPUSVN, PCESVN: the PCK certificate is re-issued for it),
    /// the up-to-date level the collateral states, whether the PCK CRL lists the PCK certificate, and whether the
    /// root CA CRL lists the platform CA or the TCB signing certificate.
    public func setTCB(
        cpuSVN: [UInt8]? = nil,
        pceSVN: Int? = nil,
        upToDateComponents: [Int]? = nil,
        revokePCK: Bool? = nil,
        revokePlatformCA: Bool? = nil,
        revokeTCBSigning: Bool? = nil
    ) throws {
        var pki = try pki()
        if cpuSVN != nil || pceSVN != nil {
            let svn = cpuSVN ?? pki.extensions.cpuSVN
            guard svn.count == 16 else { throw EnclaveError.invalidConfiguration("CPUSVN is 16 bytes") }
            try SimulatedPKI.reissuePCK(pki, cpuSVN: svn, pceSVN: pceSVN ?? pki.extensions.pceSVN, directory: directory)
            try reloadPKI()
            pki = try self.pki()
        }
        var tcb = pki.tcb
        if let upToDateComponents {
            guard upToDateComponents.count == 16 else {
                throw EnclaveError.invalidConfiguration("a TCB level has 16 components")
            }
            tcb.upToDateComponents = upToDateComponents
        }
        if let revokePCK { tcb.revokedPCK = revokePCK }
        if let revokePlatformCA { tcb.revokedPlatformCA = revokePlatformCA }
        if let revokeTCBSigning { tcb.revokedTCBSigning = revokeTCBSigning }
        try SimulatedPKI.writeTCB(tcb, directory: directory)
        try reloadPKI()
    }

    /// A DER X.509 v2 CRL signed with ECDSA P-256/SHA-256, laid out as Intel's: the CRL Number and Authority Key
    /// Identifier extensions RFC 5280 requires (the number is `from` in Unix seconds, so it increases with every
    /// issue), each entry with reason code keyCompromise. Serials are DER INTEGERs: one whose top bit is set gets
    /// its leading 00 octet, as Intel's CRLs (and every DER encoder) have it.
    static func crl(
        issuer: Certificate,
        key: P256.Signing.PrivateKey,
        revoked: [Certificate.SerialNumber],
        from: Date,
        to: Date
    ) throws -> [UInt8] {
        let algorithm: ASN1ObjectIdentifier = [1, 2, 840, 10045, 4, 3, 2]
        func utc(_ date: Date) throws -> UTCTime {
            let c = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: date)
            return try UTCTime(
                year: c.year ?? 2000,
                month: c.month ?? 1,
                day: c.day ?? 1,
                hours: c.hour ?? 0,
                minutes: c.minute ?? 0,
                seconds: c.second ?? 0
            )
        }
        var tbs = DER.Serializer()
        try tbs.appendConstructedNode(identifier: .sequence) { body in
            try body.serialize(1)
            try body.appendConstructedNode(identifier: .sequence) { try $0.serialize(algorithm) }
            try body.serialize(issuer.subject)
            try body.serialize(utc(from))
            try body.serialize(utc(to))
            if !revoked.isEmpty {
                try body.appendConstructedNode(identifier: .sequence) { list in
                    for serial in revoked {
                        try list.appendConstructedNode(identifier: .sequence) { entry in
                            try entry.serialize(serial.bytes)
                            try entry.serialize(utc(from))
                            try entry.appendConstructedNode(identifier: .sequence) { extensions in
                                // reasonCode ::= ENUMERATED { keyCompromise (1) }
                                try Self.crlExtension(&extensions, oid: [2, 5, 29, 21], value: [0x0A, 0x01, 0x01])
                            }
                        }
                    }
                }
            }
            guard let keyIdentifier = try issuer.extensions.subjectKeyIdentifier?.keyIdentifier else {
                throw EnclaveError.invalidConfiguration("the simulated CRL issuer has no subject key identifier")
            }
            var number = DER.Serializer()
            try number.serialize(Int(from.timeIntervalSince1970))
            let authority = try AuthorityKeyIdentifier(keyIdentifier: keyIdentifier).makeCertificateExtension()
            try body.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) {
                try $0.appendConstructedNode(identifier: .sequence) { extensions in
                    try Self.crlExtension(&extensions, oid: [2, 5, 29, 20], value: number.serializedBytes)
                    try Self.crlExtension(&extensions, oid: authority.oid, value: Array(authority.value))
                }
            }
        }
        let tbsBytes = tbs.serializedBytes
        let signature = try key.signature(for: tbsBytes).derRepresentation
        var crl = DER.Serializer()
        try crl.appendConstructedNode(identifier: .sequence) { outer in
            outer.serializeRawBytes(tbsBytes)
            try outer.appendConstructedNode(identifier: .sequence) { try $0.serialize(algorithm) }
            try outer.serialize(ASN1BitString(bytes: Array(signature)[...]))
        }
        return crl.serializedBytes
    }

    /// A non-critical extension: `SEQUENCE { extnID, extnValue OCTET STRING }`.
    private static func crlExtension(
        _ serializer: inout DER.Serializer,
        oid: ASN1ObjectIdentifier,
        value: [UInt8]
    ) throws {
        try serializer.appendConstructedNode(identifier: .sequence) { item in
            try item.serialize(oid)
            try item.serialize(ASN1OctetString(contentBytes: value[...]))
        }
    }
}
