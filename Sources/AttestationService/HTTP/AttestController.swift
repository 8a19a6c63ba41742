internal import AttestationAPI
internal import Hummingbird

/// MAA's attestation route: `POST /attest/{type}` with an ``AttestationAPI/AttestRequest`` body, answered with an
/// ``AttestationAPI/AttestResponse`` (`{"token": …}`).
struct AttestController: Sendable {
    let core: AttestationServiceCore
    let maxBodySize: Int

    func addRoutes(to router: some RouterMethods<BasicRequestContext>) {
        router.post("/attest/:type") { request, context -> Response in
            let type = try AttestationServer.attestationType(context)
            let body = try await AttestationServer.collect(request, limit: maxBodySize)
            let parsed = try AttestRequestParser.parse(body, type: type)
            let token = try await core.attest(type: type, request: parsed)
            return AttestationServer.json(AttestResponse(token: token))
        }
    }
}
