import EnclaveCore

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

    /// The refusal `error` means: itself, a TPM quote's failure (``TPMQuote/Failure``), a policy refusal, a parse
    /// failure (`EnclaveError`).
    public init(_ error: any Error, file: String = #fileID, line: UInt = #line) {
        switch error {
        case let error as AttestationError:
            self = error
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
