public import EnclaveCore

extension AttestationError {
    /// The attestation service's error code (MAA's vocabulary, answered with HTTP 400): the one mapping from a
    /// refusal to what a client sees.
    public var serviceErrorCode: String {
        switch code {
        case .policy: "EvidencePolicyViolation"
        case .collateralUnavailable: "CollateralUnavailable"
        case .collateralFetchFailed: "CollateralFetchFailed"
        case .wrongEvidenceType: "WrongEvidenceType"
        case .simulatedNotAllowed: "SimulatedEvidenceNotAllowed"
        default: "InvalidEvidence"
        }
    }

    /// The `enclave verify` exit status: 1 evidence that does not verify, 2 a policy refusal (the evidence itself
    /// verified), 3 no collateral to verify with (a configuration matter: give collateral or ask for chain-only).
    public var exitCode: Int32 {
        switch code {
        case .policy: 2
        case .collateralUnavailable, .collateralFetchFailed: 3
        default: 1
        }
    }

    /// The same refusal raised by a component: a check failure of one TEE's verifier (``DCAPQuote/VerificationFailure``,
    /// ``SEVSNPReport/VerificationFailure``, ``AzureVTPMEvidence/VerificationFailure``, ``TPMQuote/Failure``), a
    /// parse failure (`EnclaveError`), or itself.
    public init(_ error: any Error, file: String = #fileID, line: UInt = #line) {
        switch error {
        case let error as AttestationError:
            self = error
        case let failure as DCAPQuote.VerificationFailure:
            self.init(Code(failure.check.rawValue), failure.reason, file: file, line: line)
        case let failure as SEVSNPReport.VerificationFailure:
            self.init(Code(failure.check.rawValue), failure.reason, file: file, line: line)
        case let failure as AzureVTPMEvidence.VerificationFailure:
            let code: Code =
                switch failure.check {
                case "collateral": .collateralUnavailable
                case let name: Code(name)
                }
            self.init(code, failure.reason, file: file, line: line)
        case let failure as TPMQuote.Failure:
            self.init(.tpmQuote, failure.reason, file: file, line: line)
        case let failure as EvidencePolicy.Violation:
            self.init(.policy, failure.description, violations: [failure], file: file, line: line)
        case let error as EnclaveError:
            self.init(.malformedEvidence, error.reason, file: file, line: line)
        default:
            self.init(.malformedEvidence, "\(error)", file: file, line: line)
        }
    }
}
