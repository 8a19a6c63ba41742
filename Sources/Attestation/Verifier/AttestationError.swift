import EnclaveCore

/// Why evidence was refused: the check that failed (``code``), a message, and where in this library it was raised.
///
/// One error for every TEE and every layer, in swift-certificates' `CertificateError` shape: the code set is open
/// (a struct of static values, not an enum), so adding a check does not break a caller's `switch`. Compare codes
/// with `==` or `switch error.code { case .pckChain: … default: … }`.
/// ``serviceErrorCode`` and ``exitCode`` map it to the attestation service's MAA error codes and the CLI's exit
/// statuses, in one place.
public struct AttestationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The failed check. Its ``description`` is the check's name as messages print it (`PCK certificate chain`).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The check's name.
        let name: String

        init(_ name: String) { self.name = name }

        public var description: String { name }
        /// The check's name (``description``).
        public var rawValue: String { name }

        // MARK: Evidence format

        /// The evidence does not parse (truncated, trailing data, a field out of range, malformed JSON).
        public static let malformedEvidence = Code("parse")
        /// The evidence is of another format than the one it was presented as (an SGX quote on the TDX route).
        public static let wrongEvidenceType = Code("format")
        /// A format this library does not verify (an unknown provider).
        public static let unsupportedFormat = Code("unsupported format")
        /// A certificate given with the evidence (VCEK, ASK, certificate table) does not parse or is missing.
        public static let certificate = Code("certificate")
        /// Simulated evidence where it is not accepted.
        public static let simulatedNotAllowed = Code("simulated")

        // MARK: Intel DCAP (SGX and TDX quotes)

        /// No collateral (TCB info, QE identity, CRLs) for the quote's platform, and chain-only was not asked for.
        public static let collateralUnavailable = Code("collateral")
        /// The collateral source failed (a PCCS unreachable or answering garbage).
        public static let collateralFetchFailed = Code("collateral fetch")
        /// A CRL does not parse, is not signed by the CA it speaks for, or is not current at the verification time.
        public static let crl = Code("CRL")
        /// A certificate of the chain (PCK, its issuing CA, the TCB Signing certificate) is on a CRL.
        public static let revocation = Code("revocation")
        /// The TCB info is not signed by a valid, unrevoked Intel TCB Signing certificate.
        public static let tcbInfoSignature = Code("TCB info signature")
        /// The QE identity is not signed by a valid, unrevoked Intel TCB Signing certificate.
        public static let qeIdentitySignature = Code("QE identity signature")
        /// The TCB info or QE identity is not yet valid or has expired (`issueDate` … `nextUpdate`) at the verification
        /// time.
        public static let collateralValidity = Code("collateral validity")
        /// The quoting enclave is not the one Intel identifies: signer, product, MISCSELECT or attributes differ, or
        /// the
        /// QE identity is for the other TEE.
        public static let qeIdentity = Code("QE identity")
        /// No TCB level fits the platform: the TCB info is for another platform or TEE, the PCK certificate lacks its
        /// SGX
        /// extension, or the platform is below every level.
        public static let tcbLevel = Code("TCB level")
        /// TDX: the TDX module is not one the TCB info identifies (signer or attributes), or its SVN is below every
        /// level.
        public static let tdxModule = Code("TDX module")
        /// The quote's certification data is not a PEM PCK chain (type 5), the only kind verified.
        public static let certificationDataType = Code("certification data type")
        /// The PCK chain does not validate to a trust anchor at the verification time, or its key is not P-256.
        public static let pckChain = Code("PCK certificate chain")
        /// The quoting enclave's report is not signed by the PCK key.
        public static let qeReportSignature = Code("QE report signature")
        /// The QE report data is not SHA-256(attestation key ‖ QE authentication data): the attestation key is not the
        /// quoting enclave's.
        public static let qeReportDataBinding = Code("QE report data binding")
        /// The quote's header and body are not signed by the attestation key.
        public static let quoteSignature = Code("quote signature")

        // MARK: AMD SEV-SNP

        /// SEV-SNP: the VCEK or VLEK is outside its validity period, not signed by an ASK or ASVK, or that does not
        /// chain to
        /// a trusted ARK.
        public static let certificateChain = Code("certificate chain")
        /// SEV-SNP: the report names one kind of key (VCEK or VLEK) and the certificate is the other.
        public static let signingKey = Code("signing key")
        /// SEV-SNP: the certificate is for another processor generation than its root, or the root names none.
        public static let product = Code("product")
        /// SEV-SNP: the certificate does not certify exactly the report's reported TCB (each component's patch level).
        public static let reportedTCB = Code("reported TCB")
        /// SEV-SNP: the report's chip ID is not the VCEK's hardware ID.
        public static let chipID = Code("chip ID")
        /// SEV-SNP: the report is not signed by the certified key.
        public static let reportSignature = Code("report signature")

        // MARK: Azure vTPM

        /// The HCL report is for another TEE than the hardware evidence beside it.
        public static let hclReport = Code("HCL report")
        /// The hardware report does not bind the HCL runtime data, or that data holds no usable key.
        public static let hclRuntimeData = Code("HCL runtime data")
        /// The TPM quote is not signed by the vTPM key or its PCR digest differs.
        public static let tpmQuote = Code("TPM quote")

        // MARK: Relying party

        /// The report data does not bind the relying party's nonce.
        public static let nonce = Code("nonce")
        /// The evidence verified, but the ``EvidencePolicy`` refused its claims (``AttestationError/violations``).
        public static let policy = Code("policy")

        /// No collateral to verify with: ``collateralUnavailable`` or ``collateralFetchFailed``.
        public var isCollateralMissing: Bool { self == .collateralUnavailable || self == .collateralFetchFailed }
    }

    /// The failed check.
    public var code: Code
    /// Why it failed.
    public var message: String
    /// For ``Code/policy``: every requirement the claims missed, in the policy's order.
    public var violations: [EvidencePolicy.Violation]
    /// Where the error was raised (`Module/File.swift`).
    public var file: String
    /// The line where the error was raised.
    public var line: UInt

    /// Create an error.
    ///
    /// - Parameters:
    ///   - code: The check that failed.
    ///   - message: Why, for people. Never put secret bytes here; evidence fields are fine.
    ///   - violations: For ``Code/policy``, every requirement the claims missed.
    ///   - file: The file that raised the error; leave the default.
    ///   - line: The line that raised the error; leave the default.
    public init(
        _ code: Code,
        _ message: String,
        violations: [EvidencePolicy.Violation] = [],
        file: String = #fileID,
        line: UInt = #line
    ) {
        self.code = code
        self.message = message
        self.violations = violations
        self.file = file
        self.line = line
    }

    /// The same as ``init(_:_:violations:file:line:)``, in the words of the per-TEE verifiers.
    public init(check: Code, reason: String, file: String = #fileID, line: UInt = #line) {
        self.init(check, reason, file: file, line: line)
    }

    /// The failed check (``code``).
    public var check: Code { code }
    /// Why it failed (``message``).
    public var reason: String { message }

    /// `verification failed at CHECK: MESSAGE`.
    public var description: String { "verification failed at \(code): \(message)" }

    /// Equal when the code and message are (the source location is for diagnosis only).
    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message && lhs.violations == rhs.violations
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(message)
    }
}
