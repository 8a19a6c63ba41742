internal import Foundation
internal import Hummingbird

/// MAA's policy routes: `GET /policies/{type}` (the current policy), `PUT /policies/{type}` (set, a JWS body) and
/// `POST /policies/{type}:reset` (back to the default), the changes authorised by a bearer credential.
struct PolicyController: Sendable {
    let core: AttestationServiceCore
    let maxBodySize: Int

    func addRoutes(to router: some RouterMethods<BasicRequestContext>) {
        router.get("/policies/:type") { _, context -> Response in
            let type = try AttestationServer.attestationType(context)
            let current = try await core.currentPolicy(type: type)
            let token = try await core.policyToken(type: type)
            return AttestationServer.json([
                "token": .string(token), "policy": .string(current.text), "policyHash": .string(current.hash),
                "isDefault": .bool(current.isDefault),
            ])
        }
        router.put("/policies/:type") { request, context -> Response in
            let type = try AttestationServer.attestationType(context)
            let body = try await AttestationServer.collect(request, limit: maxBodySize)
            let token = try await core.setPolicy(
                type: type,
                jws: String(decoding: body, as: UTF8.self),
                credential: AttestationServer.bearerToken(request)
            )
            return AttestationServer.json(["token": .string(token)])
        }
        router.post("/policies/:type") { request, context -> Response in
            // MAA's reset is `POST /policies/{type}:reset`.
            let raw = context.parameters.get("type") ?? ""
            guard raw.lowercased().hasSuffix(":reset"),
                let type = AttestationType(pathComponent: String(raw.dropLast(6)))
            else {
                throw ServiceError.notFound("POST /policies/\(raw): use POST /policies/{type}:reset")
            }
            let body = try await AttestationServer.collect(request, limit: maxBodySize)
            let token = try await core.resetPolicy(
                type: type,
                jws: body.isEmpty ? nil : String(decoding: body, as: UTF8.self),
                credential: AttestationServer.bearerToken(request)
            )
            return AttestationServer.json(["token": .string(token)])
        }
    }
}
