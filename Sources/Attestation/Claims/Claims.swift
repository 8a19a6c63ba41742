public import EnclaveCore

/// What verified evidence says: the common vocabulary every TEE shares, and the TEE's own claims beside it.
public struct Claims: Hashable, Sendable {
    /// SGX enclave claims (from the report body).
    public struct SGX: Hashable, Sendable {
        /// MRENCLAVE: the measurement of the enclave's code and initial data.
        public var mrEnclave: Digest32
        /// MRSIGNER: the hash of the enclave signer's key.
        public var mrSigner: Digest32
        /// ISVPRODID: the signer's product ID.
        public var isvProductID: UInt16
        /// ISVSVN: the enclave's security version.
        public var isvSVN: UInt16
        /// ATTRIBUTES: flags (DEBUG is bit 1) and XFRM, 16 bytes.
        public var attributes: [UInt8]
        /// MISCSELECT.
        public var miscSelect: UInt32
        /// CPUSVN of the platform when the report was made.
        public var cpuSVN: [UInt8]
        /// CONFIGID (64 bytes) set at launch.
        public var configID: [UInt8]
        /// CONFIGSVN.
        public var configSVN: UInt16
        /// ISVFAMILYID.
        public var isvFamilyID: [UInt8]
        /// ISVEXTPRODID.
        public var isvExtendedProductID: [UInt8]
    }

    /// TDX trust domain claims (from the TD report).
    public struct TDX: Hashable, Sendable {
        /// MRTD: the measurement of the TD's initial contents (48 bytes).
        public var mrTD: [UInt8]
        /// RTMR0 to RTMR3.
        public var rtmrs: [[UInt8]]
        /// MRSEAM: the measurement of the TDX module.
        public var mrSeam: [UInt8]
        /// MRSIGNERSEAM: the TDX module's signer (zero for Intel's).
        public var mrSignerSeam: [UInt8]
        /// SEAMATTRIBUTES of the TDX module.
        public var seamAttributes: [UInt8]
        /// MROWNER: the TD owner's identity, set at launch.
        public var mrOwner: [UInt8]
        /// MRCONFIGID: software-defined configuration, set at launch.
        public var mrConfigID: [UInt8]
        /// MROWNERCONFIG: owner-defined configuration, set at launch.
        public var mrOwnerConfig: [UInt8]
        /// TDATTRIBUTES (bit 0 debug, bit 28 SEPT_VE_DISABLE, …).
        public var tdAttributes: UInt64
        /// XFAM: the extended features the TD may use.
        public var xfam: UInt64
        /// TEE_TCB_SVN: the TDX module's SVNs at launch.
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
        /// The report format version (2: Milan ABI, 3 adds CPUID, 5: Turin).
        public var version: UInt32
        /// MEASUREMENT: the launch digest of the guest (48 bytes).
        public var measurement: [UInt8]
        /// HOST_DATA: 32 bytes the host supplied at launch.
        public var hostData: [UInt8]
        /// FAMILY_ID from the ID block.
        public var familyID: [UInt8]
        /// IMAGE_ID from the ID block.
        public var imageID: [UInt8]
        /// GUEST_SVN from the ID block.
        public var guestSVN: UInt32
        /// The guest policy set at launch.
        public var policy: SEVSNPReport.Policy
        /// PLATFORM_INFO (SMT enabled, TSME enabled, …).
        public var platformInfo: UInt64
        /// The VMPL the report was requested from (0 is the most privileged).
        public var vmpl: UInt32
        /// SHA-384 of the ID block's signing key.
        public var idKeyDigest: [UInt8]
        /// SHA-384 of the author key that signed the ID key.
        public var authorKeyDigest: [UInt8]
        /// REPORT_ID: the guest's ID across migrations.
        public var reportID: [UInt8]
        /// CHIP_ID (zero when masked).
        public var chipID: [UInt8]
        /// REPORTED_TCB: the TCB the report and its VCEK are for.
        public var reportedTCB: SEVSNPReport.TCBVersion
        /// COMMITTED_TCB: the TCB the firmware committed to (no rollback below it).
        public var committedTCB: SEVSNPReport.TCBVersion
        /// CURRENT_TCB: the TCB running now.
        public var currentTCB: SEVSNPReport.TCBVersion
        /// LAUNCH_TCB: the TCB when the guest was launched.
        public var launchTCB: SEVSNPReport.TCBVersion
        /// `VCEK` or `VLEK`.
        public var signingKey: String
        /// The processor generation, from the root key (`Milan`, `Genoa`, `Turin`).
        public var productName: String
        /// The product and stepping the VCEK certifies (`Milan-B0`), when it names one.
        public var certifiedProduct: String?
    }

    /// The vTPM of an Azure confidential VM, when the evidence came through one.
    public struct TPM: Hashable, Sendable {
        /// PCR values (SHA-256 bank), by index.
        public var pcrs: [[UInt8]]
        /// The nonce the TPM quote was made for.
        public var nonce: [UInt8]
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
    /// Intel security advisories that apply to the platform's TCB level (`INTEL-SA-…`).
    public var advisoryIDs: [String]
    /// SGX enclave claims, for SGX evidence.
    public var sgx: SGX?
    /// TD claims, for TDX evidence.
    public var tdx: TDX?
    /// Guest claims, for SEV-SNP evidence.
    public var sevSNP: SEVSNP?
    /// vTPM claims, for evidence from an Azure confidential VM's paravisor.
    public var tpm: TPM?
    /// Checks the verification was asked to skip, empty for a full verification. A chain-only DCAP verification
    /// (``DCAPQuote/verifyChainOnly(anchors:at:)``) lists ``chainOnlyNotChecked``: revocation and TCB.
    public var notChecked: [String] = []

    /// What a chain-only DCAP verification does not check: `revocation` (no CRLs) and `TCB` (no TCB info and no
    /// QE identity levels: the platform's and the quoting enclave's TCB status are unknown).
    public static let chainOnlyNotChecked = ["revocation", "TCB"]

    /// Claims with the given values.
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
        if !notChecked.isEmpty { object["notChecked"] = notChecked }
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
        if let tpm {
            object["tpm"] = ["pcrs": tpm.pcrs.map(Hex.encode), "nonce": Hex.encode(tpm.nonce)] as [String: Any]
        }
        return object
    }

    static func hex64(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
