internal import Attestation
internal import AttestationAPI
public import Hummingbird

/// An error the service answers with, in MAA's shape: `{"error":{"code":"…","message":"…"}}` (`ErrorResponse`)
/// and an HTTP status. Route handlers just throw it: as a Hummingbird `HTTPResponseError` it writes its own response,
/// the one place the MAA error body is made.
public struct ServiceError: Error, Hashable, Sendable, CustomStringConvertible, HTTPResponseError {
    /// The HTTP status of the response.
    public var status: HTTPResponse.Status
    /// The MAA error code (`InvalidRequest`, `NotFound`, `PolicyEvaluationFailed`, …).
    public var code: String
    /// Why, for people.
    public var message: String

    /// An error answered with `status`, `code` and `message`.
    public init(status: HTTPResponse.Status, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    /// The status as a number (`400`, `503`, …).
    public var statusCode: Int { status.code }

    public var description: String { "\(status.code) \(code): \(message)" }

    /// A 400 answer: the request is wrong (malformed, not bound, refused by policy).
    ///
    /// - Parameters:
    ///   - code: The MAA error code, such as `InvalidParameter`.
    ///   - message: Why, for the client. It goes on the wire: quote untrusted text with care and never include secrets.
    public static func badRequest(_ code: String, _ message: String) -> ServiceError {
        ServiceError(status: .badRequest, code: code, message: message)
    }
    /// A 401 answer: the request lacks the authority it needs (an administrator token, a policy signer's signature).
    ///
    /// - Parameters:
    ///   - code: The MAA error code.
    ///   - message: Why, for the client; never a secret such as the expected token.
    public static func unauthorized(_ code: String, _ message: String) -> ServiceError {
        ServiceError(status: .unauthorized, code: code, message: message)
    }
    /// A 404 answer with code `NotFound`.
    public static func notFound(_ message: String) -> ServiceError {
        ServiceError(status: .notFound, code: "NotFound", message: message)
    }
    /// A 413 answer with code `RequestTooLarge`: the body is over the service's limit.
    public static func tooLarge(_ message: String) -> ServiceError {
        ServiceError(status: .contentTooLarge, code: "RequestTooLarge", message: message)
    }
    /// A 500 answer with code `InternalError`: the service failed, not the request. Keep internals out of `message`.
    public static func `internal`(_ message: String) -> ServiceError {
        ServiceError(status: .internalServerError, code: "InternalError", message: message)
    }

    /// The JSON body: AttestationAPI's `ErrorResponse` written by `JSONEncoder`.
    public var body: [UInt8] {
        (try? WireJSON.encode(ErrorResponse(code: code, message: message)))
            ?? Array(#"{"error":{"code":"InternalError","message":"the error did not encode"}}"#.utf8)
    }

    /// The response: ``status`` with ``body`` as `application/json`.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        response
    }

    /// The response, without a request (for middleware and tests).
    var response: Response {
        Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: body))
        )
    }

    /// `text` as a JSON string literal (quoted and escaped), for messages that quote untrusted text.
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
            let status: HTTPResponse.Status =
                refusal.code == .collateralFetchFailed ? .serviceUnavailable : .badRequest
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
