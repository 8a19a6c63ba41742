internal import AttestationService
internal import Hummingbird

/// Turns every error into a `ServiceError` (Key Vault's `{"error":{"code","message"}}` body): Hummingbird's errors
/// keep their status; unexpected errors become a 500 without internals (logged here).
struct KeyBrokerErrorMiddleware<Context: RequestContext>: RouterMiddleware {
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
            throw ServiceError.internal("the key broker failed to process the request")
        }
    }
}
