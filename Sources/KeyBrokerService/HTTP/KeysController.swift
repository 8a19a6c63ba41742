internal import AttestationAPI
internal import AttestationService
internal import Hummingbird

/// The key broker's routes (see ``KeyBrokerServer``).
struct KeysController: Sendable {
    let core: KeyBrokerCore

    func addRoutes(to router: some RouterMethods<BasicRequestContext>) {
        let create: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, context in
            let parameters = try await KeyBrokerServer.decode(KeyCreateParameters.self, request, what: "the key")
            let bundle = try await core.createKey(
                name: name(context),
                parameters: parameters,
                credential: KeyBrokerServer.bearerToken(request)
            )
            return KeyBrokerServer.json(bundle)
        }
        router.put("/keys/:name/create", use: create)
        router.post("/keys/:name/create", use: create)
        router.post("/keys/:name/import") { request, context -> Response in
            let parameters = try await KeyBrokerServer.decode(KeyImportParameters.self, request, what: "the import")
            return KeyBrokerServer.json(
                try await core.importKey(
                    name: name(context),
                    parameters: parameters,
                    credential: KeyBrokerServer.bearerToken(request)
                )
            )
        }
        router.get("/keys") { request, _ -> Response in
            KeyBrokerServer.json(try await core.listKeys(credential: KeyBrokerServer.bearerToken(request)))
        }
        router.get("/keys/:name") { request, context -> Response in
            KeyBrokerServer.json(
                try await core.key(name: name(context), version: nil, credential: KeyBrokerServer.bearerToken(request))
            )
        }
        router.get("/keys/:name/versions") { request, context -> Response in
            KeyBrokerServer.json(
                try await core.listVersions(name: name(context), credential: KeyBrokerServer.bearerToken(request))
            )
        }
        router.get("/keys/:name/:version") { request, context -> Response in
            KeyBrokerServer.json(
                try await core.key(
                    name: name(context),
                    version: version(context),
                    credential: KeyBrokerServer.bearerToken(request)
                )
            )
        }
        router.post("/keys/:name/rotate") { request, context -> Response in
            KeyBrokerServer.json(
                try await core.rotateKey(name: name(context), credential: KeyBrokerServer.bearerToken(request))
            )
        }
        router.delete("/keys/:name") { request, context -> Response in
            KeyBrokerServer.json(
                try await core.deleteKey(name: name(context), credential: KeyBrokerServer.bearerToken(request))
            )
        }
        router.get("/deletedkeys/:name") { request, context -> Response in
            KeyBrokerServer.json(
                try await core.deletedKey(name: name(context), credential: KeyBrokerServer.bearerToken(request))
            )
        }
        router.delete("/deletedkeys/:name") { request, context -> Response in
            try await core.purgeKey(name: name(context), credential: KeyBrokerServer.bearerToken(request))
            return Response(status: .noContent)
        }
        router.post("/deletedkeys/:name/recover") { request, context -> Response in
            KeyBrokerServer.json(
                try await core.recoverKey(name: name(context), credential: KeyBrokerServer.bearerToken(request))
            )
        }
        router.put("/keys/:name/:version/releasepolicy") { request, context -> Response in
            let policy = try await KeyBrokerServer.decode(KeyReleasePolicy.self, request, what: "the release policy")
            return KeyBrokerServer.json(
                try await core.updatePolicy(
                    name: name(context),
                    version: version(context),
                    policy: policy,
                    credential: KeyBrokerServer.bearerToken(request)
                )
            )
        }
        router.post("/keys/:name/release") { request, context -> Response in
            // Key Vault's release without a version: the current one.
            let parameters = try await KeyBrokerServer.decodeRelease(request)
            return KeyBrokerServer.json(
                try await core.release(name: name(context), version: "", parameters: parameters)
            )
        }
        router.post("/keys/:name/:version/release") { request, context -> Response in
            let parameters = try await KeyBrokerServer.decodeRelease(request)
            return KeyBrokerServer.json(
                try await core.release(name: name(context), version: version(context), parameters: parameters)
            )
        }
        router.post("/keys/:name/:version/unwrapkey") { request, context -> Response in
            let parameters = try await KeyBrokerServer.decode(KeyOperationParameters.self, request, what: "the unwrap")
            return KeyBrokerServer.json(
                try await core.unwrapKey(
                    name: name(context),
                    version: version(context),
                    parameters: parameters,
                    credential: KeyBrokerServer.bearerToken(request)
                )
            )
        }
        router.post("/keys/:name/:version/wrapkey") { request, context -> Response in
            let parameters = try await KeyBrokerServer.decode(KeyOperationParameters.self, request, what: "the wrap")
            return KeyBrokerServer.json(
                try await core.wrapKey(
                    name: name(context),
                    version: version(context),
                    parameters: parameters,
                    credential: KeyBrokerServer.bearerToken(request)
                )
            )
        }
        router.get("/attestation") { _, _ -> Response in
            KeyBrokerServer.json(try await core.attestation())
        }
        router.get("/importkey") { _, _ -> Response in
            KeyBrokerServer.json(try await core.importKey())
        }
        router.get("/audit") { request, _ -> Response in
            let limit = request.uri.queryParameters.get("top").flatMap { Int($0) } ?? 1000
            return KeyBrokerServer.json(
                try await core.auditLog(limit: limit, credential: KeyBrokerServer.bearerToken(request))
            )
        }
        router.get("/audit/refusals") { request, _ -> Response in
            let limit = request.uri.queryParameters.get("top").flatMap { Int($0) } ?? 1000
            return KeyBrokerServer.json(
                try await core.refusalLog(limit: limit, credential: KeyBrokerServer.bearerToken(request))
            )
        }
        router.post("/replicas/join") { request, _ -> Response in
            let join = try await KeyBrokerServer.decode(ReplicaJoinRequest.self, request, what: "the join request")
            return KeyBrokerServer.json(
                try await core.grantJoin(join, credential: KeyBrokerServer.bearerToken(request))
            )
        }
    }

    func name(_ context: BasicRequestContext) -> String { context.parameters.get("name") ?? "" }
    func version(_ context: BasicRequestContext) -> String { context.parameters.get("version") ?? "" }
}
