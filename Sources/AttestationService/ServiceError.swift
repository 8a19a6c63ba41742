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
