public import EnclaveCore
internal import Foundation
internal import SwiftASN1
public import X509

/// What a DCAP verifier needs besides the quote: TCB info and QE identity with their signatures and issuer chains,
/// and the CRLs. The signed JSON is kept as its exact bytes.
public struct Collateral: Sendable {
    /// The `tcbInfo` JSON object exactly as signed; parsed only after ``tcbInfoSignature`` verified.
    public var tcbInfoBytes: [UInt8] { didSet { parsed = ParsedCollateral() } }
    /// The TCB Signing key's ECDSA P-256 signature over ``tcbInfoBytes`` (`r ‖ s`, 64 bytes).
    public var tcbInfoSignature: [UInt8]
    /// The TCB Signing certificate and Intel's root, as PCS serves them; the chain must end at a trusted root.
    public var tcbInfoIssuerChain: [Certificate]
    /// The `enclaveIdentity` JSON object exactly as signed; parsed only after ``qeIdentitySignature`` verified.
    public var qeIdentityBytes: [UInt8] { didSet { parsed = ParsedCollateral() } }
    /// The TCB Signing key's ECDSA P-256 signature over ``qeIdentityBytes`` (`r ‖ s`, 64 bytes).
    public var qeIdentitySignature: [UInt8]
    /// The QE identity's signing certificate and Intel's root.
    public var qeIdentityIssuerChain: [Certificate]
    /// The root CA's CRL (DER, hexadecimal DER or PEM): revokes the intermediate CAs and the TCB Signing certificate.
    public var rootCACRL: [UInt8] { didSet { parsed = ParsedCollateral() } }
    /// The PCK CA's CRL (DER, hexadecimal DER or PEM): revokes PCK certificates, the quote's leaf.
    public var pckCRL: [UInt8] { didSet { parsed = ParsedCollateral() } }
    /// The PCK CA (platform or processor) that signed ``pckCRL``, and Intel's root.
    public var pckCRLIssuerChain: [Certificate]
    /// The CRLs, TCB info and QE identity parsed on first use, kept with the bytes they came from (a lookup with
    /// other bytes parses those): one collateral object verifying many quotes parses each once. Replaced whenever
    /// those bytes are.
    var parsed = ParsedCollateral()
    /// The issuer chains' certificates with the DER bytes each was parsed from (and Intel's root): a quote's PEM
    /// chain reuses those whose bytes it repeats (``DCAPQuote/pckChain(reusing:)``) instead of parsing them again.
    var knownCertificates = KnownCertificates.intelRoot

    /// Parse the single-file JSON bundle in the layout of the dcap-qvl project (`QuoteCollateralV3`): the signed
    /// JSON as strings, signatures and CRLs in hexadecimal, issuer chains in PEM.
    ///
    /// A bundle whose exact bytes `cache` already holds is not read again (``CollateralCache``: looked up by the
    /// SHA-256 of the bytes, confirmed by comparing them); what it gives is what parsing those bytes gives.
    /// - Parameters:
    ///   - bytes: The bundle.
    ///   - cache: Where parsed bundles are kept; `nil` parses every time.
    /// - Throws: `EnclaveError` — `limitExceeded` over 1 MiB, `malformedInput` when a field is missing or malformed.
    ///   Nothing is verified here: signatures, chains and dates are checked with each quote.
    public init(dcapQVLJSON bytes: [UInt8], cache: CollateralCache? = .shared) throws(EnclaveError) {
        guard bytes.count <= 1 << 20 else { throw .limitExceeded("collateral bundle larger than 1 MiB") }
        guard let cache else {
            try self.init(parsingDCAPQVLJSON: bytes)
            return
        }
        self = try cache.collateral(bundle: bytes) { (bytes) throws(EnclaveError) in
            try Collateral(parsingDCAPQVLJSON: bytes)
        }
    }

    /// ``init(dcapQVLJSON:cache:)`` without a cache.
    private init(parsingDCAPQVLJSON bytes: [UInt8]) throws(EnclaveError) {
        // The strict JSON reader of the collateral documents (Foundation's bridges every value to an object).
        let object: JSONFields
        do {
            object = try JSONFields(bytes: bytes, what: "collateral")
        } catch {
            throw .malformedInput("collateral is not a JSON object")
        }
        /// The UTF-8 bytes of the string `key` (the signed JSON exactly as the bundle's string holds it).
        func string(_ key: String) throws(EnclaveError) -> [UInt8] {
            do { return try object.bytes(key) } catch { throw .malformedInput("collateral lacks \(key)") }
        }
        // Intel's bundles carry one chain for the TCB info and the QE identity: the same text is parsed once, and a
        // certificate met again (Intel's root ends every chain) is compared by its bytes, not parsed again.
        var chains: [(text: [UInt8], certificates: [Certificate])] = []  // a few kilobytes each: compared, not hashed
        var known = KnownCertificates.intelRoot
        func hex(_ key: String) throws(EnclaveError) -> [UInt8] {
            guard let value = JSONFields.hex(try string(key)) else {
                throw .malformedInput("\(key) is not hexadecimal")
            }
            return value
        }
        func chain(_ key: String) throws(EnclaveError) -> [Certificate] {
            let text = try string(key)
            if let parsed = chains.first(where: { $0.text == text }) { return parsed.certificates }
            do {
                let parsed = try PEMCertificates.parse(text, reusing: &known)
                chains.append((text, parsed))
                return parsed
            } catch {
                throw .malformedInput("\(key) is not a PEM certificate chain")
            }
        }
        tcbInfoBytes = try string("tcb_info")
        tcbInfoSignature = try hex("tcb_info_signature")
        tcbInfoIssuerChain = try chain("tcb_info_issuer_chain")
        qeIdentityBytes = try string("qe_identity")
        qeIdentitySignature = try hex("qe_identity_signature")
        qeIdentityIssuerChain = try chain("qe_identity_issuer_chain")
        rootCACRL = try hex("root_ca_crl")
        pckCRL = try hex("pck_crl")
        pckCRLIssuerChain = try chain("pck_crl_issuer_chain")
        knownCertificates = known
    }

    /// Parse Intel's `2019-05-15T00:00:00Z` dates.
    static func parseDate(_ text: String) -> Date? {
        UTCDate.intelTimestamp(text) ?? (try? Date(text, strategy: .iso8601))
    }
}

extension Collateral {
    /// The file names of a collateral directory, as PCCS/PCS serve the pieces. Each piece is found under any of
    /// several names (compared case-insensitively): the first name is what `enclave platform collateral` writes.
    public enum DirectoryLayout {
        /// `{"tcbInfo": {…}, "signature": "hex"}` (PCS response body, SGX or TDX).
        public static let tcbInfo = "tcbinfo.json"
        /// `{"enclaveIdentity": {…}, "signature": "hex"}`.
        public static let qeIdentity = "qeidentity.json"
        /// PEM chains (signing certificate, root), plain or URL-encoded as in PCS response headers.
        public static let tcbInfoIssuerChain = "tcbinfo-issuer-chain.pem"
        /// The QE identity's issuer chain (PEM).
        public static let qeIdentityIssuerChain = "qeidentity-issuer-chain.pem"
        /// The PCK CRL's issuer chain (PEM).
        public static let pckCRLIssuerChain = "pckcrl-issuer-chain.pem"
        /// CRLs in DER, hexadecimal DER or PEM.
        public static let rootCACRL = "rootcacrl.der"
        /// The PCK CA's CRL.
        public static let pckCRL = "pckcrl.der"

        /// Every name each piece is accepted under.
        static let names: [String: [String]] = [
            tcbInfo: [tcbInfo, "tcb_info.json", "tcbinfo", "tcb-info.json", "sample_tcbinfo_response"],
            qeIdentity: [
                qeIdentity, "qe_identity.json", "qeidentity", "qe-identity.json", "sample_qeidentity_response",
            ],
            tcbInfoIssuerChain: [
                tcbInfoIssuerChain, "tcbinfoissuerchain.pem", "tcb_info_issuer_chain.pem", "tcb-info-issuer-chain.pem",
            ],
            qeIdentityIssuerChain: [
                qeIdentityIssuerChain, "qeidentityissuerchain.pem", "qe_identity_issuer_chain.pem",
                "enclave-identity-issuer-chain.pem",
            ],
            pckCRLIssuerChain: [
                pckCRLIssuerChain, "pckcrlissuerchain.pem", "pck_crl_issuer_chain.pem", "pck-crl-issuer-chain.pem",
            ],
            rootCACRL: [rootCACRL, "rootcacrl.pem", "rootcacrl.hex", "rootcacrl", "rootcrl.der", "root_ca_crl.der"],
            pckCRL: [pckCRL, "pckcrl.pem", "pckcrl.hex", "pckcrl", "pck_crl.der"],
        ]
    }

    /// Read a collateral directory (see ``DirectoryLayout``). The signed objects are taken as their exact bytes
    /// from the PCS response bodies. Without its own issuer chain, the QE identity uses the TCB info's (Intel signs
    /// both with the TCB signing key).
    /// - Throws: `EnclaveError` `malformedInput` when the directory can't be listed, a piece is missing or over 1 MiB,
    ///   or a chain is not PEM. Nothing is verified here.
    public init(directory: String) throws(EnclaveError) {
        guard let listing = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            throw .malformedInput("cannot list the collateral directory \(directory)")
        }
        func find(_ piece: String) -> String? {
            for name in DirectoryLayout.names[piece] ?? [piece] {
                if let match = listing.first(where: { $0.lowercased() == name }) { return directory + "/" + match }
            }
            return nil
        }
        func read(_ piece: String) throws(EnclaveError) -> [UInt8] {
            guard let path = find(piece), let data = FileManager.default.contents(atPath: path), data.count <= 1 << 20
            else {
                throw .malformedInput("collateral directory lacks \(piece) (or it is over 1 MiB)")
            }
            return [UInt8](data)
        }
        var known = KnownCertificates.intelRoot
        func chain(_ piece: String) throws(EnclaveError) -> [Certificate] {
            var text = String(decoding: try read(piece), as: UTF8.self)
            if text.contains("%"), let decoded = text.removingPercentEncoding { text = decoded }
            do {
                return try PEMCertificates.parse(Array(text.utf8), reusing: &known)
            } catch {
                throw .malformedInput("\(piece) is not a PEM certificate chain")
            }
        }
        let tcb = try Self.signedObject(try read(DirectoryLayout.tcbInfo), key: "tcbInfo")
        let qe = try Self.signedObject(try read(DirectoryLayout.qeIdentity), key: "enclaveIdentity")
        tcbInfoBytes = tcb.object
        tcbInfoSignature = tcb.signature
        qeIdentityBytes = qe.object
        qeIdentitySignature = qe.signature
        tcbInfoIssuerChain = try chain(DirectoryLayout.tcbInfoIssuerChain)
        qeIdentityIssuerChain =
            find(DirectoryLayout.qeIdentityIssuerChain) == nil
            ? tcbInfoIssuerChain : try chain(DirectoryLayout.qeIdentityIssuerChain)
        pckCRLIssuerChain = try chain(DirectoryLayout.pckCRLIssuerChain)
        rootCACRL = try read(DirectoryLayout.rootCACRL)
        pckCRL = try read(DirectoryLayout.pckCRL)
        knownCertificates = known
    }

    /// Read collateral from `path`: a directory as PCCS serves the pieces (``init(directory:)``), or a JSON bundle in
    /// the dcap-qvl layout (``init(dcapQVLJSON:cache:)``).
    /// - Throws: `EnclaveError` `malformedInput` when nothing is at `path` or what is there is neither layout.
    public init(contentsOf path: String) throws(EnclaveError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .malformedInput("no collateral at \(path)")
        }
        if isDirectory.boolValue {
            try self.init(directory: path)
            return
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        guard size <= 1 << 20, let data = FileManager.default.contents(atPath: path) else {
            throw .malformedInput("cannot read the collateral bundle \(path) (or it is over 1 MiB)")
        }
        try self.init(dcapQVLJSON: [UInt8](data))
    }

    /// Split a PCS body `{"KEY": {…}, "signature": "hex"}` into the exact bytes of the object and the signature.
    static func signedObject(_ body: [UInt8], key: String) throws(EnclaveError) -> (object: [UInt8], signature: [UInt8])
    {
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
            parsed[key] is [String: Any], let hex = parsed["signature"] as? String, let signature = Hex.decode(hex)
        else {
            throw .malformedInput("not a signed \(key) document")
        }
        // Find the value of KEY in the raw text: the signature covers these bytes exactly as served.
        let marker = Array("\"\(key)\"".utf8)
        guard
            let markerStart = (0...(max(0, body.count - marker.count))).first(where: {
                Array(body[$0..<min(body.count, $0 + marker.count)]) == marker
            }),
            let open = body[(markerStart + marker.count)...].firstIndex(of: UInt8(ascii: "{"))
        else {
            throw .malformedInput("\(key) not found")
        }
        var depth = 0
        var inString = false
        var escaped = false
        for index in open..<body.count {
            let byte = body[index]
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"): depth += 1
            case UInt8(ascii: "}"):
                depth -= 1
                if depth == 0 { return (Array(body[open...index]), signature) }
            default: break
            }
        }
        throw .malformedInput("\(key) is not a complete JSON object")
    }
}
