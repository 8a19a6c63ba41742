public import Hummingbird

/// Turns every error into a ``ServiceError``, whose response is MAA's `{"error":{"code":…,"message":…}}` with its
/// status: Hummingbird's errors (no route, a body too large) keep their status; unexpected errors become a 500
/// without internals (logged here). The key broker and the clean room host use it too.
public struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Who failed, in the 500 answer's message ("the service failed to process the request").
    let what: String

    /// A middleware whose 500 answers say `what` failed.
    public init(what: String = "the service") {
        self.what = what
    }

    /// Passes `request` on, and turns what `next` throws into a ``ServiceError``.
    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as ServiceError {
            throw error
        } catch let error as HTTPError {
            let code =
                switch error.status {
                case .notFound: "NotFound"
                case .contentTooLarge: "RequestTooLarge"
                default: "HTTP\(error.status.code)"
                }
            throw ServiceError(status: error.status, code: code, message: error.body ?? error.status.reasonPhrase)
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)"])
            throw ServiceError.internal("\(what) failed to process the request")
        }
    }
}
