internal import Hummingbird

/// MAA's `api-version` query parameter: optional here, but one older than 2020-10-01 (what Microsoft's clients
/// send) is refused.
struct APIVersionMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if let version = request.uri.queryParameters["api-version"].map(String.init) {
            let datePart = String(version.prefix(10))
            guard datePart.count == 10, datePart >= AttestationServer.minimumAPIVersion else {
                throw ServiceError.badRequest(
                    "UnsupportedApiVersion",
                    "api-version \(version) is not supported; use \(AttestationServer.minimumAPIVersion) or later"
                )
            }
        }
        return try await next(request, context)
    }
}
