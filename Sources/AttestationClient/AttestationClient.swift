public import AsyncHTTPClient
public import Attestation
internal import AttestationAPI
internal import EnclaveCore
public import Foundation
internal import NIOCore
internal import NIOFoundationCompat
internal import NIOHTTP1

/// A client of the attestation service's MAA-compatible REST API: challenges, attestation, policies, the token
/// signing keys, and token verification against them.
public struct AttestationClient: Sendable {
    /// An error the service returned (`{"error":{"code":…,"message":…}}`) or a transport failure.
    public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        /// The HTTP status the service answered with; 0 when the failure happened on this side (unreachable, a response
        /// that does not parse, a bad trust setting).
        public var status: Int
        /// The service's error code (MAA's names: `InvalidParameter`, `RuntimeDataNotBound`, …) or this client's
        /// (`Unreachable`, `BadResponse`, `BadTrust`, `BadRequest`).
        public var code: String
        /// The service's or the client's explanation, for people.
        public var message: String
        public var description: String { "\(status) \(code): \(message)" }
    }

    /// What the attester binds: runtime data (whose SHA-256 leads the evidence's report data) and its type.
    public struct RuntimeData: Sendable {
        /// How the service reads the runtime data: `Binary` becomes the `x-ms-sgx-ehd` claim (base64url), `JSON` (an
        /// object) becomes `x-ms-runtime`.
        public enum DataType: String, Sendable {
            /// Opaque bytes: the token carries them base64url-encoded as `x-ms-sgx-ehd`.
            case binary = "Binary"
            /// A JSON object: the token carries it parsed as `x-ms-runtime`.
            case json = "JSON"
        }
        /// The runtime data's bytes; their SHA-256 must be the first 32 bytes of the evidence's report data, or the
        /// service refuses the evidence (`RuntimeDataNotBound`).
        public var data: [UInt8]
        /// How the service reads ``data``.
        public var dataType: DataType

        /// Runtime data to send with evidence.
        ///
        /// - Parameters:
        ///   - data: The bytes the evidence binds (by their SHA-256 in its report data).
        ///   - dataType: `Binary` or `JSON` (then `data` must be a JSON object).
        public init(data: [UInt8], dataType: DataType) {
            self.data = data
            self.dataType = dataType
        }
    }

    /// The service's base URL (`https://host:port`).
    public let endpoint: URL
    /// The `api-version` query parameter sent with every request.
    public let apiVersion: String
    private let http: HTTPClient?
    private let trust: ServiceTrust

    /// The hosts a plain-HTTP service may be on: this machine's loopback names.
    public static let loopbackHosts: Set<String> = ["127.0.0.1", "localhost", "::1", "[::1]"]

    /// Whether `url` names a host on this machine's loopback (`127.0.0.1`, `localhost`, `::1`).
    public static func isLoopback(_ url: URL) -> Bool {
        loopbackHosts.contains(url.host?.lowercased() ?? "")
    }

    /// Refuses, before any connection, a plain-HTTP `url` to anything but loopback: over the network, an attacker
    /// could answer `/certs`, the OpenID configuration and `/attest` with keys of its own and vouch for anything.
    ///
    /// - Throws: ``Failure`` `InsecureTransport` (status 0) for `http://` to another host; `BadRequest` for a scheme
    ///   other than `http` or `https`.
    public static func checkTransport(_ url: URL) throws(Failure) {
        switch url.scheme?.lowercased() {
        case "https"?: return
        case "http"?:
            guard isLoopback(url) else {
                throw Failure(
                    status: 0,
                    code: "InsecureTransport",
                    message: "\(url.absoluteString): plain http:// only to a service on this machine's loopback "
                        + "(127.0.0.1, localhost, ::1); use https://"
                )
            }
        default:
            throw Failure(status: 0, code: "BadRequest", message: "\(url.absoluteString) is not an http(s) URL")
        }
    }

    /// A client of the service at `endpoint` (`https://host:port`, or `http://` for a loopback service: every request
    /// to another `http://` host fails, `InsecureTransport`, before it connects).
    ///
    /// Without `httpClient` it uses a client of its own for the system's trust roots (``ServiceTrust/system``), kept
    /// for the life of the process, that follows no redirect. A client given here is used as it is configured: give
    /// one with `redirectConfiguration = .disallow`. A redirect is never accepted as an answer
    /// (`UnexpectedRedirect`), but a client that follows redirects has already sent the request, its bearer token
    /// or evidence included, to wherever the redirect pointed.
    public init(endpoint: URL, apiVersion: String = "2022-08-01", httpClient: HTTPClient? = nil) {
        self.endpoint = endpoint
        self.apiVersion = apiVersion
        self.http = httpClient
        self.trust = .system
    }

    /// A client of the service at `endpoint` that accepts the server certificates `trust` names (a CA or
    /// self-signed certificate, or a SHA-256 pin).
    public init(endpoint: URL, trust: ServiceTrust, apiVersion: String = "2022-08-01") {
        self.endpoint = endpoint
        self.apiVersion = apiVersion
        self.http = nil
        self.trust = trust
    }

    /// A single-use server nonce to bind into the evidence, and when it expires.
    /// - Throws: ``Failure`` — the service's error, `Unreachable`, or `BadResponse` when the answer lacks a field.
    public func challenge() async throws -> (nonce: String, expires: Date) {
        let response = try await decode(
            ChallengeResponse.self,
            .GET,
            "challenge",
            what: "the challenge response lacks nonce or expiresAt"
        )
        return (response.nonce, Date(timeIntervalSince1970: TimeInterval(response.expiresAt)))
    }

    /// Attest `evidence` on its route (`Evidence.maaRoute`: the format decides `SgxEnclave`, `TdxVm`,
    /// `SevSnpVm` or `SimulatedEnclave`) and return the service's token. Auxiliary data travels with it: SEV-SNP
    /// evidence from configfs-tsm is posted with its certificate table.
    /// - Throws: ``Failure`` with the service's code when it refuses the evidence (`RuntimeDataNotBound`, …),
    ///   `Unreachable`, or `BadResponse` when the answer has no token.
    public func attest(
        _ evidence: Evidence,
        runtimeData: RuntimeData? = nil,
        nonce: String? = nil,
        draftPolicy: String? = nil
    ) async throws -> String {
        try await attest(
            type: evidence.maaRoute,
            evidence: evidence.serviceDocument,
            runtimeData: runtimeData,
            nonce: nonce,
            draftPolicy: draftPolicy
        )
    }

    /// Attest `evidence` of `type` (`SgxEnclave`, `OpenEnclave`, `TdxVm`, `SevSnpVm`, `SimulatedEnclave`) as the
    /// service's request carries it (for `SevSnpVm` a JSON document) and return the service's token.
    /// - Throws: ``Failure`` with the service's code when it refuses the evidence, `Unreachable`, or `BadResponse`.
    public func attest(
        type: String,
        evidence: [UInt8],
        runtimeData: RuntimeData? = nil,
        nonce: String? = nil,
        draftPolicy: String? = nil
    ) async throws -> String {
        // The evidence field (`quote` or `report`) follows the route: AttestRequest decides it, in one place.
        let request = AttestRequest(
            route: type,
            evidence: evidence,
            runtimeData: runtimeData.map {
                AttestRequest.TypedData(bytes: $0.data, dataType: $0.dataType == .json ? .json : .binary)
            },
            draftPolicyForAttestation: draftPolicy,
            nonce: nonce
        )
        let body = try WireJSON.encode(request)
        return try await decode(
            AttestResponse.self,
            .POST,
            "attest/\(type)",
            body: Data(body),
            what: "the attestation response has no token"
        ).token
    }

    /// The service's token signing keys (`/certs`), as JSON.
    /// - Throws: ``Failure`` — the service's error or `Unreachable`.
    public func certificates() async throws -> String {
        String(decoding: try await raw(.GET, "certs").body, as: UTF8.self)
    }

    /// The issuer the service names in its tokens (from `/.well-known/openid-configuration`).
    /// - Throws: ``Failure`` — the service's error, `Unreachable`, or `BadResponse` when the document has no issuer.
    public func issuer() async throws -> String {
        try await decode(
            OpenIDMetadata.self,
            .GET,
            ".well-known/openid-configuration",
            what: "the OpenID configuration has no issuer"
        ).issuer
    }

    /// A verifier for this service's tokens, from its current keys and issuer.
    ///
    /// The keys are only as genuine as the connection they come over: use `https` and the right ``ServiceTrust``
    /// (plain `http` only to a service on this machine).
    /// - Throws: ``Failure`` when either document can't be fetched, ``TokenVerifier/Failure`` when the JWKS has no
    ///   usable key.
    public func verifier(clockSkew: TimeInterval = 60) async throws -> TokenVerifier {
        try await TokenVerifier(jwks: try await certificates(), issuer: try await issuer(), clockSkew: clockSkew)
    }

    /// The policy of `type`: its text.
    /// - Throws: ``Failure`` — the service's error (`InvalidParameter` for an unknown type), `Unreachable`, or
    ///   `BadResponse`.
    public func policy(type: String) async throws -> String {
        let response = try await decode(
            PolicyResponse.self,
            .GET,
            "policies/\(type)",
            what: "the policy response has no policy"
        )
        guard let text = response.policy else {
            throw Failure(status: 0, code: "BadResponse", message: "the policy response has no policy")
        }
        return text
    }

    /// Set the policy of `type` from a JWS: signed by a policy signer (naming the type, the operation and a fresh
    /// version) where the service has signers; otherwise unsigned (`alg: none`) with the administrator's token as
    /// `adminToken`.
    /// - Throws: ``Failure`` with the service's code when it refuses (an unsigned request without the administrator's
    ///   token, a signature by an unknown signer, a version not above the last one, a policy that does not parse), or
    ///   `Unreachable`.
    public func setPolicy(type: String, jws: String, adminToken: String? = nil) async throws {
        _ = try await raw(
            .PUT,
            "policies/\(type)",
            body: Data(jws.utf8),
            contentType: "text/plain",
            bearer: adminToken
        )
    }

    /// Reset the policy of `type` to the default: with a signed request `jws` where the service has policy signers,
    /// otherwise with the administrator's token.
    /// - Throws: ``Failure`` with the service's code when it refuses, or `Unreachable`.
    public func resetPolicy(type: String, jws: String? = nil, adminToken: String? = nil) async throws {
        _ = try await raw(
            .POST,
            "policies/\(type):reset",
            body: Data((jws ?? "").utf8),
            contentType: "text/plain",
            bearer: adminToken
        )
    }

    // MARK: Transport

    /// The response to `method path` decoded as `T` (a wire type); `what` says what is wrong when it is not one.
    private func decode<T: Decodable>(
        _ type: T.Type,
        _ method: HTTPMethod,
        _ path: String,
        body: Data? = nil,
        what: String
    ) async throws -> T {
        let response = try await raw(method, path, body: body)
        do {
            return try WireJSON.decode(type, from: response.body)
        } catch {
            throw Failure(status: response.status, code: "BadResponse", message: what)
        }
    }

    private func raw(
        _ method: HTTPMethod,
        _ path: String,
        body: Data? = nil,
        contentType: String = "application/json",
        bearer: String? = nil
    ) async throws -> (status: Int, body: [UInt8]) {
        var components = URLComponents(url: endpoint.appendingPathComponent(path), resolvingAgainstBaseURL: false)
        components?.queryItems = [URLQueryItem(name: "api-version", value: apiVersion)]
        guard let url = components?.url?.absoluteString else {
            throw Failure(status: 0, code: "BadRequest", message: "cannot form a URL for \(path)")
        }
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let bearer { request.headers.add(name: "Authorization", value: "Bearer " + bearer) }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(data: body))
        }
        try Self.checkTransport(endpoint)
        let response: HTTPClientResponse
        do {
            let client: HTTPClient
            if let http { client = http } else { client = try await trust.httpClient(for: endpoint) }
            response = try await client.execute(request, timeout: .seconds(60))
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(status: 0, code: "Unreachable", message: "\(url): \(error)")
        }
        try Self.refuseRedirect(response, url: url)
        let bytes = Array(buffer: try await response.body.collect(upTo: 4 << 20))
        guard (200..<300).contains(Int(response.status.code)) else {
            let error = (try? WireJSON.decode(ErrorResponse.self, from: bytes))?.error
            throw Failure(
                status: Int(response.status.code),
                code: error?.code ?? "HTTP\(response.status.code)",
                message: error?.message ?? String(decoding: bytes.prefix(500), as: UTF8.self)
            )
        }
        return (Int(response.status.code), bytes)
    }

    /// Refuses a redirect as an answer: a client of a trust anchor talks to the service it was given and nowhere
    /// else (a redirect could send it from https to http, or to another host, with its token or evidence). The
    /// clients this module makes follow no redirect, so a 3xx arrives here; a client given by the caller may have
    /// followed one already (its `history` then holds more than one request), which is refused too.
    ///
    /// - Throws: ``Failure`` `UnexpectedRedirect` (status 0: this side refused), naming the status and the location.
    static func refuseRedirect(_ response: HTTPClientResponse, url: String) throws(Failure) {
        let followed = response.history.count > 1
        guard followed || (300..<400).contains(Int(response.status.code)) else { return }
        let status = followed ? response.history[0].responseHead.status : response.status
        let location = followed ? response.history[1].request.url : response.headers.first(name: "Location") ?? ""
        let shown = location.isEmpty ? "no location" : String(reflecting: String(location.prefix(256)))
        throw Failure(
            status: 0,
            code: "UnexpectedRedirect",
            message: "\(url) answered HTTP \(status.code) redirecting to \(shown): redirects are not followed "
                + "(give the service's own URL)"
                + (followed ? "; the HTTP client given followed it, so the request went there" : "")
        )
    }
}
