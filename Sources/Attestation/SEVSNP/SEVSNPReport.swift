public import EnclaveCore

/// An AMD SEV-SNP attestation report (`ATTESTATION_REPORT`, versions 2 to 5: Milan, Genoa, Turin), parsed
/// strictly from its 1184 bytes. The signature is ECDSA P-384 with SHA-384 over bytes `[0, 0x2A0)`, by the VCEK or
/// VLEK.
public struct SEVSNPReport: Hashable, Sendable {
    /// The guest policy the guest owner set at launch.
    public struct Policy: Hashable, Sendable {
        /// The 64-bit `POLICY` field as the report carries it.
        public var rawValue: UInt64
        /// Bits 0–7: the lowest firmware ABI minor version the guest accepts.
        public var abiMinor: UInt8 { UInt8(truncatingIfNeeded: rawValue) }
        /// Bits 8–15: the lowest firmware ABI major version the guest accepts.
        public var abiMajor: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 8) }
        /// Bit 16: simultaneous multithreading may be enabled.
        public var smtAllowed: Bool { rawValue & (1 << 16) != 0 }
        /// Bit 18: a migration agent may be associated with the guest.
        public var migrationAgentAllowed: Bool { rawValue & (1 << 18) != 0 }
        /// Bit 19: the host may debug the guest (its memory is then not protected).
        public var debugAllowed: Bool { rawValue & (1 << 19) != 0 }
        /// Bit 20: the guest may run on one socket only.
        public var singleSocket: Bool { rawValue & (1 << 20) != 0 }

        /// The policy as it appears in the claims: `value` (hex), `abiMajor`, `abiMinor`, `smt`, `migrationAgent`,
        /// `debug`
        /// and `singleSocket`.
        public var jsonObject: [String: Any] {
            [
                "value": Claims.hex64(rawValue), "abiMajor": Int(abiMajor), "abiMinor": Int(abiMinor),
                "smt": smtAllowed, "migrationAgent": migrationAgentAllowed, "debug": debugAllowed,
                "singleSocket": singleSocket,
            ]
        }
    }

    /// A `TCB_VERSION`: security patch levels of the firmware components. Turin adds the FMC and moves the fields.
    public struct TCBVersion: Hashable, Sendable {
        /// The 64-bit `TCB_VERSION` as the report carries it.
        public var rawValue: UInt64
        /// The boot loader's security patch level (SPL).
        public var bootloader: UInt8
        /// The PSP operating system's (TEE) security patch level.
        public var tee: UInt8
        /// The SNP firmware's security patch level.
        public var snp: UInt8
        /// The CPU microcode's security patch level.
        public var microcode: UInt8
        /// Turin and later only.
        public var fmc: UInt8?

        /// Decode `rawValue` in the layout of `product`.
        public init(rawValue: UInt64, product: SEVSNPReport.Product) {
            self.rawValue = rawValue
            func byte(_ index: Int) -> UInt8 { UInt8(truncatingIfNeeded: rawValue >> (8 * index)) }
            if product == .turin {
                (fmc, bootloader, tee, snp, microcode) = (byte(0), byte(1), byte(2), byte(3), byte(7))
            } else {
                (fmc, bootloader, tee, snp, microcode) = (nil, byte(0), byte(1), byte(6), byte(7))
            }
        }

        /// The TCB as it appears in the claims: `value` (hex) and each component's level (`fmc` on Turin only).
        public var jsonObject: [String: Any] {
            var object: [String: Any] = [
                "value": Claims.hex64(rawValue), "bootloader": Int(bootloader), "tee": Int(tee), "snp": Int(snp),
                "microcode": Int(microcode),
            ]
            if let fmc { object["fmc"] = Int(fmc) }
            return object
        }
    }

    /// The processor generation, named by the root key (`ARK-Milan`, …).
    public enum Product: String, Hashable, Sendable, CaseIterable {
        /// EPYC 7003 (Zen 3), root key `ARK-Milan`.
        case milan = "Milan"
        /// EPYC 9004 (Zen 4), root key `ARK-Genoa`.
        case genoa = "Genoa"
        /// EPYC 9005 (Zen 5), root key `ARK-Turin`; its `TCB_VERSION` layout differs and adds the FMC.
        case turin = "Turin"
    }

    /// The key that signed the report.
    public enum SigningKey: Hashable, Sendable {
        /// The chip's versioned key (from its chip ID and TCB).
        case vcek
        /// A versioned key AMD issued to a cloud provider.
        case vlek
    }

    /// The encoded size.
    public static let size = 0x4A0
    /// Where the signature starts; the signed bytes end here.
    public static let signatureOffset = 0x2A0

    /// The report format version, 2 to 5.
    public let version: UInt32
    /// The guest's security version number, from the ID block the guest owner signed.
    public let guestSVN: UInt32
    /// The guest policy fixed at launch; it says whether the host may debug the guest or attach a migration agent.
    public let policy: Policy
    /// The 16-byte family ID from the ID block, chosen by the guest owner.
    public let familyID: [UInt8]
    /// The 16-byte image ID from the ID block, chosen by the guest owner.
    public let imageID: [UInt8]
    /// The virtual machine privilege level (0–3) of the software that requested the report; 0 is the most
    /// privileged.
    ///
    /// Software at a higher VMPL is less privileged, and what it binds into ``reportData`` is only as trustworthy as
    /// that software; ``EvidencePolicy`` refuses a VMPL above 0 by default.
    public let vmpl: UInt32
    /// The signature algorithm: always 1 (ECDSA P-384 with SHA-384); other values are refused when parsing.
    public let signatureAlgorithm: UInt32
    /// The platform's current `TCB_VERSION` (raw; decode with ``TCBVersion/init(rawValue:product:)``).
    public let currentTCB: UInt64
    /// The `PLATFORM_INFO` bits: SMT enabled (bit 0), TSME enabled (bit 1), and more on newer firmware.
    public let platformInfo: UInt64
    /// Whether ``authorKeyDigest`` is meaningful: the ID key was itself signed by an author key.
    public let authorKeyEnabled: Bool
    /// Whether the guest asked the firmware to zero ``chipID`` (`MASK_CHIP_ID`).
    public let chipIDMasked: Bool
    /// Which key signed the report: the chip's VCEK or a cloud provider's VLEK.
    public let signingKey: SigningKey
    /// The 64 bytes the guest supplied when requesting the report: where a nonce or a key's hash is bound.
    public let reportData: [UInt8]
    /// The 48-byte launch digest of the guest's initial memory and VM state (SHA-384 based).
    public let measurement: [UInt8]
    /// 32 bytes the host supplied at launch (`HOST_DATA`); the service compares it with the SHA-256 of `initTimeData`.
    public let hostData: [UInt8]
    /// The SHA-384 digest of the ID key that signed the ID block; zero when the guest launched without one.
    public let idKeyDigest: [UInt8]
    /// The SHA-384 digest of the author key that signed the ID key; meaningful only when ``authorKeyEnabled``.
    public let authorKeyDigest: [UInt8]
    /// A 32-byte ID the firmware assigned to this guest.
    public let reportID: [UInt8]
    /// The report ID of the guest's migration agent; all `FF` bytes when there is none.
    public let reportIDMigrationAgent: [UInt8]
    /// The `TCB_VERSION` the signing key was derived for; verification requires the VCEK or VLEK to certify exactly
    /// this.
    public let reportedTCB: UInt64
    /// Version 3 and later: CPUID family, model and stepping (zero in version 2).
    public let cpuidFamily: UInt8
    /// Version 3 and later: the CPUID model (zero in version 2).
    public let cpuidModel: UInt8
    /// Version 3 and later: the CPUID stepping (zero in version 2).
    public let cpuidStepping: UInt8
    /// The 64-byte unique ID of the chip; zero when masked (``chipIDMasked``) or, usually, when a VLEK signed.
    ///
    /// For a VCEK, verification requires the certificate's hardware ID to equal it.
    public let chipID: [UInt8]
    /// The `TCB_VERSION` the firmware has committed to (it can't be rolled back below this).
    public let committedTCB: UInt64
    /// The `TCB_VERSION` in force when the guest was launched.
    public let launchTCB: UInt64
    /// The signature's r and s, big-endian, 48 bytes each.
    public let signatureR: [UInt8]
    /// The signature's s, big-endian, 48 bytes.
    public let signatureS: [UInt8]
    /// The exact bytes parsed.
    public let bytes: [UInt8]

    /// The signed bytes.
    public var signedBytes: ArraySlice<UInt8> { bytes[0..<Self.signatureOffset] }

    /// Parse exactly 1184 bytes. Unknown versions, signature algorithms and signing keys are refused.
    /// - Throws: `EnclaveError` `malformedInput` for another size, version, VMPL, signature algorithm or signing key,
    ///   or a signature field that is not a P-384 signature.
    public init(bytes: [UInt8]) throws(EnclaveError) {
        guard bytes.count == Self.size else {
            throw .malformedInput("an SEV-SNP report is \(Self.size) bytes, got \(bytes.count)")
        }
        var reader = ByteReader(bytes)
        version = try reader.integer(UInt32.self, "version")
        guard (2...5).contains(version) else { throw .malformedInput("unsupported SEV-SNP report version \(version)") }
        guestSVN = try reader.integer(UInt32.self, "guest SVN")
        policy = Policy(rawValue: try reader.integer(UInt64.self, "policy"))
        familyID = Array(try reader.take(16, "family ID"))
        imageID = Array(try reader.take(16, "image ID"))
        vmpl = try reader.integer(UInt32.self, "VMPL")
        guard vmpl <= 3 else { throw .malformedInput("VMPL \(vmpl) is not 0 to 3") }
        signatureAlgorithm = try reader.integer(UInt32.self, "signature algorithm")
        guard signatureAlgorithm == 1 else {
            throw .malformedInput("signature algorithm \(signatureAlgorithm) is not ECDSA P-384 with SHA-384")
        }
        currentTCB = try reader.integer(UInt64.self, "current TCB")
        platformInfo = try reader.integer(UInt64.self, "platform info")
        let flags = try reader.integer(UInt32.self, "key flags")
        authorKeyEnabled = flags & 1 != 0
        chipIDMasked = flags & 2 != 0
        switch (flags >> 2) & 7 {
        case 0: signingKey = .vcek
        case 1: signingKey = .vlek
        case let other: throw .malformedInput("signing key \(other) is neither VCEK nor VLEK")
        }
        _ = try reader.take(4, "reserved")
        reportData = Array(try reader.take(64, "report data"))
        measurement = Array(try reader.take(48, "measurement"))
        hostData = Array(try reader.take(32, "host data"))
        idKeyDigest = Array(try reader.take(48, "ID key digest"))
        authorKeyDigest = Array(try reader.take(48, "author key digest"))
        reportID = Array(try reader.take(32, "report ID"))
        reportIDMigrationAgent = Array(try reader.take(32, "migration agent report ID"))
        reportedTCB = try reader.integer(UInt64.self, "reported TCB")
        cpuidFamily = try reader.integer(UInt8.self, "CPUID family")
        cpuidModel = try reader.integer(UInt8.self, "CPUID model")
        cpuidStepping = try reader.integer(UInt8.self, "CPUID stepping")
        _ = try reader.take(0x1A0 - 0x18B, "reserved")
        chipID = Array(try reader.take(64, "chip ID"))
        committedTCB = try reader.integer(UInt64.self, "committed TCB")
        _ = try reader.take(8, "current and committed firmware versions")
        launchTCB = try reader.integer(UInt64.self, "launch TCB")
        _ = try reader.take(Self.signatureOffset - 0x1F8, "reserved")
        let r = Array(try reader.take(72, "signature r"))
        let s = Array(try reader.take(72, "signature s"))
        let rest = try reader.take(Self.size - Self.signatureOffset - 144, "signature reserved")
        try reader.expectEnd("report")
        // Little-endian 72-byte integers holding 48-byte values.
        guard r[48...].allSatisfy({ $0 == 0 }), s[48...].allSatisfy({ $0 == 0 }), rest.allSatisfy({ $0 == 0 }) else {
            throw .malformedInput("the signature field is not a P-384 signature")
        }
        signatureR = r[0..<48].reversed()
        signatureS = s[0..<48].reversed()
        self.bytes = bytes
    }
}
