internal import Hummingbird

/// Turns every error into a ``ServiceError``, whose response is MAA's `{"error":{"code":…,"message":…}}` with its
/// status: Hummingbird's errors (no route, a body too large) keep their status; unexpected errors become a 500
/// without internals (logged here).
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(
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
            throw ServiceError.internal("the service failed to process the request")
        }
    }
}
