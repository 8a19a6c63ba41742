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
        public static let crl = Code("CRL")
        public static let revocation = Code("revocation")
        public static let tcbInfoSignature = Code("TCB info signature")
        public static let qeIdentitySignature = Code("QE identity signature")
        public static let collateralValidity = Code("collateral validity")
        public static let qeIdentity = Code("QE identity")
        public static let tcbLevel = Code("TCB level")
        public static let tdxModule = Code("TDX module")
        public static let certificationDataType = Code("certification data type")
        public static let pckChain = Code("PCK certificate chain")
        public static let qeReportSignature = Code("QE report signature")
        public static let qeReportDataBinding = Code("QE report data binding")
        public static let quoteSignature = Code("quote signature")

        // MARK: AMD SEV-SNP

        public static let certificateChain = Code("certificate chain")
        public static let signingKey = Code("signing key")
        public static let product = Code("product")
        public static let reportedTCB = Code("reported TCB")
        public static let chipID = Code("chip ID")
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
