internal import AttestationAPI
internal import Foundation
internal import Hummingbird

/// MAA's policy management certificate routes: `GET /certificates` (the certificates, in a signed token's
/// `x-ms-policy-certificates`), `POST /certificates:add` and `POST /certificates:remove` (a JWS signed by a current
/// policy management certificate whose payload's `policyCertificate` is the certificate, as a JWK with `x5c`).
struct CertificatesController: Sendable {
    let core: AttestationServiceCore
    let maxBodySize: Int

    func addRoutes(to router: some RouterMethods<BasicRequestContext>) {
        router.get("/certificates") { _, _ -> Response in
            AttestationServer.json(PolicyResponse(token: try await core.policyCertificatesToken()))
        }
        router.post("/certificates:add") { request, _ -> Response in
            let body = try await AttestationServer.collect(request, limit: maxBodySize)
            let token = try await core.addPolicyCertificate(
                jws: try Self.jws(body),
                credential: AttestationServer.bearerToken(request)
            )
            return AttestationServer.json(PolicyResponse(token: token))
        }
        router.post("/certificates:remove") { request, _ -> Response in
            let body = try await AttestationServer.collect(request, limit: maxBodySize)
            let token = try await core.removePolicyCertificate(
                jws: try Self.jws(body),
                credential: AttestationServer.bearerToken(request)
            )
            return AttestationServer.json(PolicyResponse(token: token))
        }
    }

    /// The request's JWS: the body as text, or (as Microsoft's clients send it, `application/json`) a JSON string.
    static func jws(_ body: [UInt8]) throws -> String {
        let text = String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("\"") else { return text }
        do {
            return try JSONDecoder().decode(String.self, from: Data(text.utf8))
        } catch {
            throw ServiceError.badRequest("InvalidPolicyDocument", "the body is neither a JWS nor a JSON string")
        }
    }
}
