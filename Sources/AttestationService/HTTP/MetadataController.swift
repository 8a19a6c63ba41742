internal import AttestationAPI
internal import Hummingbird

/// What relying parties read to check tokens, and the challenge attesters bind: `GET /certs` (the token signing
/// keys as a JWKS), `GET /.well-known/openid-configuration` (``AttestationAPI/OpenIDMetadata``) and
/// `GET /challenge` (``AttestationAPI/ChallengeResponse``).
struct MetadataController: Sendable {
    let core: AttestationServiceCore

    /// The claims the OpenID metadata names.
    static let claimsSupported = [
        "x-ms-attestation-type", "x-ms-sgx-mrenclave", "x-ms-sgx-mrsigner", "x-ms-runtime", "nonce",
    ]

    func addRoutes(to router: some RouterMethods<BasicRequestContext>) {
        router.get("/certs") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: core.signer.jwksJSON))
            )
        }
        router.get("/.well-known/openid-configuration") { _, _ -> Response in
            AttestationServer.json(
                OpenIDMetadata(
                    issuer: core.issuer,
                    jwksURI: core.issuer + "/certs",
                    idTokenSigningAlgValuesSupported: [core.signer.keyType.algorithm],
                    responseTypesSupported: ["token"],
                    claimsSupported: Self.claimsSupported
                )
            )
        }
        router.get("/challenge") { _, _ -> Response in
            let challenge = try await core.challenge()
            return AttestationServer.json(
                ChallengeResponse(nonce: challenge.nonce, expiresAt: Int(challenge.expires.timeIntervalSince1970))
            )
        }
    }
}
