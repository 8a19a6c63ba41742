public import EnclaveCore

/// What verified evidence says: the common vocabulary every TEE shares, and the TEE's own claims beside it.
public struct Claims: Hashable, Sendable {
    /// SGX enclave claims (from the report body).
    public struct SGX: Hashable, Sendable {
        public var mrEnclave: Digest32
        public var mrSigner: Digest32
        public var isvProductID: UInt16
        public var isvSVN: UInt16
        public var attributes: [UInt8]
        public var miscSelect: UInt32
        public var cpuSVN: [UInt8]
        public var configID: [UInt8]
        public var configSVN: UInt16
        public var isvFamilyID: [UInt8]
        public var isvExtendedProductID: [UInt8]
    }

    /// TDX trust domain claims (from the TD report).
    public struct TDX: Hashable, Sendable {
        public var mrTD: [UInt8]
        /// RTMR0 to RTMR3.
        public var rtmrs: [[UInt8]]
        public var mrSeam: [UInt8]
        public var mrSignerSeam: [UInt8]
        public var seamAttributes: [UInt8]
        public var mrOwner: [UInt8]
        public var mrConfigID: [UInt8]
        public var mrOwnerConfig: [UInt8]
        public var tdAttributes: UInt64
        public var xfam: UInt64
        public var teeTCBSVN: [UInt8]
        /// TDX 1.5 only.
        public var teeTCBSVN2: [UInt8]?
        /// TDX 1.5 only.
        public var mrServiceTD: [UInt8]?
        /// TD attribute bit 28.
        public var septVEDisable: Bool
    }

    /// AMD SEV-SNP guest claims (from the attestation report and the signing certificate).
    public struct SEVSNP: Hashable, Sendable {
        public var version: UInt32
        public var measurement: [UInt8]
        public var hostData: [UInt8]
        public var familyID: [UInt8]
        public var imageID: [UInt8]
        public var guestSVN: UInt32
        public var policy: SEVSNPReport.Policy
        public var platformInfo: UInt64
        public var vmpl: UInt32
        public var idKeyDigest: [UInt8]
        public var authorKeyDigest: [UInt8]
        public var reportID: [UInt8]
        public var chipID: [UInt8]
        public var reportedTCB: SEVSNPReport.TCBVersion
        public var committedTCB: SEVSNPReport.TCBVersion
        public var currentTCB: SEVSNPReport.TCBVersion
        public var launchTCB: SEVSNPReport.TCBVersion
        /// `VCEK` or `VLEK`.
        public var signingKey: String
        /// The processor product from the signing certificate (`Milan`, `Genoa`, `Turin`).
        public var productName: String
    }

    /// `sgx`, `tdx`, `sev-snp`.
    public var format: String
    /// The evidence chains to a simulation root, not to a hardware vendor's.
    public var simulated: Bool
    /// The TEE runs in debug mode: its memory is open to the host.
    public var debug: Bool
    /// The 64 bytes the enclave or guest bound into the evidence.
    public var reportData: [UInt8]
    /// TCB status from collateral, or `nil` when none was evaluated (SEV-SNP has no such collateral).
    public var tcbStatus: TCBStatus?
    public var advisoryIDs: [String]
    public var sgx: SGX?
    public var tdx: TDX?
    public var sevSNP: SEVSNP?

    public init(
        format: String,
        simulated: Bool,
        debug: Bool,
        reportData: [UInt8],
        tcbStatus: TCBStatus? = nil,
        advisoryIDs: [String] = [],
        sgx: SGX? = nil,
        tdx: TDX? = nil,
        sevSNP: SEVSNP? = nil
    ) {
        self.format = format
        self.simulated = simulated
        self.debug = debug
        self.reportData = reportData
        self.tcbStatus = tcbStatus
        self.advisoryIDs = advisoryIDs
        self.sgx = sgx
        self.tdx = tdx
        self.sevSNP = sevSNP
    }

    /// The main measurement: MRENCLAVE, MRTD or the SNP launch measurement.
    public var measurement: [UInt8] {
        if let sgx { return sgx.mrEnclave.bytes }
        if let tdx { return tdx.mrTD }
        return sevSNP?.measurement ?? []
    }
}

extension Claims {
    /// The claims as a JSON-ready dictionary with the keys `enclave verify --json` prints: the common ones, and
    /// the TEE's own under `sgx`, `tdx` or `sevSnp`. Byte strings are hexadecimal.
    public var jsonObject: [String: Any] {
        var object: [String: Any] = [
            "format": format, "simulated": simulated, "debug": debug, "reportData": Hex.encode(reportData),
            "advisoryIDs": advisoryIDs,
        ]
        if let tcbStatus { object["tcbStatus"] = tcbStatus.rawValue }
        if let sgx {
            object["sgx"] =
                [
                    "mrEnclave": sgx.mrEnclave.hex, "mrSigner": sgx.mrSigner.hex, "isvProdID": Int(sgx.isvProductID),
                    "isvSVN": Int(sgx.isvSVN), "attributes": Hex.encode(sgx.attributes),
                    "miscSelect": Int(sgx.miscSelect), "cpuSVN": Hex.encode(sgx.cpuSVN),
                    "configID": Hex.encode(sgx.configID), "configSVN": Int(sgx.configSVN),
                    "isvFamilyID": Hex.encode(sgx.isvFamilyID), "isvExtProdID": Hex.encode(sgx.isvExtendedProductID),
                ] as [String: Any]
        }
        if let tdx {
            var td: [String: Any] = [
                "mrTD": Hex.encode(tdx.mrTD), "mrSeam": Hex.encode(tdx.mrSeam),
                "mrSignerSeam": Hex.encode(tdx.mrSignerSeam), "seamAttributes": Hex.encode(tdx.seamAttributes),
                "mrOwner": Hex.encode(tdx.mrOwner), "mrConfigID": Hex.encode(tdx.mrConfigID),
                "mrOwnerConfig": Hex.encode(tdx.mrOwnerConfig), "tdAttributes": Self.hex64(tdx.tdAttributes),
                "xfam": Self.hex64(tdx.xfam), "teeTCBSVN": Hex.encode(tdx.teeTCBSVN),
                "septVEDisable": tdx.septVEDisable,
            ]
            for (index, rtmr) in tdx.rtmrs.enumerated() { td["rtmr\(index)"] = Hex.encode(rtmr) }
            if let svn2 = tdx.teeTCBSVN2 { td["teeTCBSVN2"] = Hex.encode(svn2) }
            if let service = tdx.mrServiceTD { td["mrServiceTD"] = Hex.encode(service) }
            object["tdx"] = td
        }
        if let snp = sevSNP {
            object["sevSnp"] =
                [
                    "version": Int(snp.version), "measurement": Hex.encode(snp.measurement),
                    "hostData": Hex.encode(snp.hostData), "familyID": Hex.encode(snp.familyID),
                    "imageID": Hex.encode(snp.imageID), "guestSVN": Int(snp.guestSVN), "policy": snp.policy.jsonObject,
                    "platformInfo": Self.hex64(snp.platformInfo), "vmpl": Int(snp.vmpl),
                    "idKeyDigest": Hex.encode(snp.idKeyDigest), "authorKeyDigest": Hex.encode(snp.authorKeyDigest),
                    "reportID": Hex.encode(snp.reportID), "chipID": Hex.encode(snp.chipID),
                    "reportedTCB": snp.reportedTCB.jsonObject, "committedTCB": snp.committedTCB.jsonObject,
                    "currentTCB": snp.currentTCB.jsonObject, "launchTCB": snp.launchTCB.jsonObject,
                    "signingKey": snp.signingKey, "productName": snp.productName,
                ] as [String: Any]
        }
        return object
    }

    static func hex64(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
