internal import Attestation
internal import AttestationClient

/// An error the service answers with, in MAA's shape: `{"error":{"code":"…","message":"…"}}` and an HTTP status.
public struct ServiceError: Error, Hashable, Sendable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var message: String

    public var description: String { "\(status) \(code): \(message)" }

    public static func badRequest(_ code: String, _ message: String) -> ServiceError {
        ServiceError(status: 400, code: code, message: message)
    }
    public static func unauthorized(_ code: String, _ message: String) -> ServiceError {
        ServiceError(status: 401, code: code, message: message)
    }
    public static func notFound(_ message: String) -> ServiceError {
        ServiceError(status: 404, code: "NotFound", message: message)
    }
    public static func tooLarge(_ message: String) -> ServiceError {
        ServiceError(status: 413, code: "RequestTooLarge", message: message)
    }
    public static func `internal`(_ message: String) -> ServiceError {
        ServiceError(status: 500, code: "InternalError", message: message)
    }

    /// The JSON body.
    public var body: [UInt8] {
        Array("{\"error\":{\"code\":\(Self.quote(code)),\"message\":\(Self.quote(message))}}".utf8)
    }

    static func quote(_ text: String) -> String { TokenValue.string(text).jsonText }
}

extension ServiceError {
    /// The answer to a refused evidence: an ``Attestation/AttestationError``'s MAA code
    /// (``Attestation/AttestationError/serviceErrorCode``) with its message; a service error as it is; anything else
    /// as `InvalidEvidence`.
    init(_ error: any Error) {
        switch error {
        case let error as ServiceError:
            self = error
        default:
            let refusal = AttestationError(error)
            let message =
                switch refusal.serviceErrorCode {
                case "InvalidEvidence" where refusal.code == .malformedEvidence:
                    "the evidence does not parse: \(refusal.message)"
                case "InvalidEvidence": refusal.description
                default: refusal.message
                }
            // A collateral source that failed is the service's trouble, not the evidence's: 503, as the source says.
            let status = refusal.code == .collateralFetchFailed ? 503 : 400
            self = ServiceError(status: status, code: refusal.serviceErrorCode, message: message)
        }
    }
}

extension AttestationError {
    /// A service error met while verifying (a collateral lookup): missing collateral keeps its meaning, so that the
    /// verifier can fall back to chain-only where the operator allows it.
    init(_ error: ServiceError) {
        switch error.code {
        case "CollateralUnavailable": self.init(.collateralUnavailable, error.message)
        case "CollateralFetchFailed": self.init(.collateralFetchFailed, error.message)
        default: self.init(.malformedEvidence, error.message)
        }
    }
}
