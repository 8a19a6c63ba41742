public import AsyncHTTPClient
public import AttestationAPI
internal import EnclaveCore
public import Foundation
internal import NIOCore
internal import NIOFoundationCompat
internal import NIOHTTP1

/// A client of the key broker's Key Vault-shaped REST API (`enclave serve keybroker`): key management with the
/// administrator's token, release with an attestation token, the broker's own evidence. Over HTTPS with the same
/// trust choices as ``AttestationClient`` (a CA or self-signed certificate, or a SHA-256 pin of the broker's).
/// Errors are ``AttestationClient/Failure`` with the broker's code (`KeyNotFound`, `PolicyNotSatisfied`, …).
public struct KeyBrokerClient: Sendable {
    /// The broker's base URL (`https://host:port`).
    public let endpoint: URL
    /// The administrator's token, sent as a bearer token on management calls.
    public let adminToken: String?
    /// The `api-version` query parameter sent with every request.
    public let apiVersion: String
    private let http: HTTPClient?
    private let trust: ServiceTrust

    /// A client of the broker at `endpoint` accepting the server certificates `trust` names.
    public init(endpoint: URL, trust: ServiceTrust, adminToken: String? = nil, apiVersion: String = "7.4") {
        self.endpoint = endpoint
        self.trust = trust
        self.adminToken = adminToken
        self.apiVersion = apiVersion
        self.http = nil
    }

    /// A client of the broker at `endpoint` using `httpClient` as it is configured: give one with
    /// `redirectConfiguration = .disallow`. A redirect is never accepted as an answer (`UnexpectedRedirect`), but a
    /// client that follows redirects has already sent the request, the administrator's token included, to wherever
    /// the redirect pointed.
    public init(endpoint: URL, httpClient: HTTPClient, adminToken: String? = nil, apiVersion: String = "7.4") {
        self.endpoint = endpoint
        self.trust = .system
        self.adminToken = adminToken
        self.apiVersion = apiVersion
        self.http = httpClient
    }

    /// `PUT /keys/{name}/create`: a new key (or version) made inside the broker enclave.
    public func createKey(name: String, _ parameters: KeyCreateParameters) async throws -> KeyBundle {
        try await call(KeyBundle.self, .PUT, "keys/\(name)/create", body: parameters)
    }

    /// `POST /keys/{name}/import`: a key wrapped to the broker's import key.
    public func importKey(name: String, _ parameters: KeyImportParameters) async throws -> KeyBundle {
        try await call(KeyBundle.self, .POST, "keys/\(name)/import", body: parameters)
    }

    /// `GET /keys`.
    public func listKeys() async throws -> KeyListResult {
        try await call(KeyListResult.self, .GET, "keys")
    }

    /// `GET /keys/{name}[/{version}]`: the public part.
    public func key(name: String, version: String? = nil) async throws -> KeyBundle {
        try await call(KeyBundle.self, .GET, "keys/\(name)" + (version.map { "/" + $0 } ?? ""))
    }

    /// `GET /keys/{name}/versions`.
    public func versions(name: String) async throws -> KeyListResult {
        try await call(KeyListResult.self, .GET, "keys/\(name)/versions")
    }

    /// `POST /keys/{name}/rotate`.
    public func rotateKey(name: String) async throws -> KeyBundle {
        try await call(KeyBundle.self, .POST, "keys/\(name)/rotate", body: [String: String]())
    }

    /// `DELETE /keys/{name}` (soft delete).
    public func deleteKey(name: String) async throws -> DeletedKeyBundle {
        try await call(DeletedKeyBundle.self, .DELETE, "keys/\(name)")
    }

    /// `GET /deletedkeys/{name}`.
    public func deletedKey(name: String) async throws -> DeletedKeyBundle {
        try await call(DeletedKeyBundle.self, .GET, "deletedkeys/\(name)")
    }

    /// `DELETE /deletedkeys/{name}` (purge).
    public func purgeKey(name: String) async throws {
        _ = try await raw(.DELETE, "deletedkeys/\(name)", body: nil, admin: true)
    }

    /// `POST /deletedkeys/{name}/recover`.
    public func recoverKey(name: String) async throws -> KeyBundle {
        try await call(KeyBundle.self, .POST, "deletedkeys/\(name)/recover", body: [String: String]())
    }

    /// `PUT /keys/{name}/{version}/releasepolicy`: refused `ReleasePolicyImmutable` (409) for an immutable policy and
    /// `KeyOwnedByImporter` (409) for an owner's key, whose policy only a new import under a new name changes.
    public func updateReleasePolicy(
        name: String,
        version: String,
        _ policy: KeyReleasePolicy
    ) async throws
        -> KeyBundle
    {
        try await call(KeyBundle.self, .PUT, "keys/\(name)/\(version)/releasepolicy", body: policy)
    }

    /// `POST /keys/{name}/{version}/release` with an attestation token (no administrator token is sent): the
    /// broker's JWS (Key Vault's `value`).
    /// `version` nil releases the current version (`POST /keys/{name}/release`).
    public func release(name: String, version: String?, _ parameters: KeyReleaseParameters) async throws -> String {
        let body = try WireJSON.encode(parameters)
        let path = "keys/\(name)/" + (version.map { $0 + "/" } ?? "") + "release"
        let response = try await raw(.POST, path, body: Data(body), admin: false)
        return try decode(KeyReleaseResult.self, response, what: "the release answer has no value").value
    }

    /// `POST /keys/{name}/{version}/unwrapkey`: a data key unwrapped inside the broker enclave.
    public func unwrapKey(name: String, version: String, algorithm: String, wrapped: [UInt8]) async throws -> [UInt8] {
        let result = try await call(
            KeyOperationResult.self,
            .POST,
            "keys/\(name)/\(version)/unwrapkey",
            body: KeyOperationParameters(alg: algorithm, value: Base64URL.encode(wrapped))
        )
        guard let bytes = Base64URL.decode(result.value) else {
            throw AttestationClient.Failure(
                status: 200,
                code: "BadResponse",
                message: "the unwrapped key is not base64url"
            )
        }
        return bytes
    }

    /// `POST /keys/{name}/{version}/wrapkey`: a data key wrapped inside the broker enclave (AES keys).
    public func wrapKey(name: String, version: String, algorithm: String, key: [UInt8]) async throws -> [UInt8] {
        let result = try await call(
            KeyOperationResult.self,
            .POST,
            "keys/\(name)/\(version)/wrapkey",
            body: KeyOperationParameters(alg: algorithm, value: Base64URL.encode(key))
        )
        guard let bytes = Base64URL.decode(result.value) else {
            throw AttestationClient.Failure(
                status: 200,
                code: "BadResponse",
                message: "the wrapped key is not base64url"
            )
        }
        return bytes
    }

    /// `GET /attestation`: the broker enclave's evidence, signing certificate and import key.
    public func attestation() async throws -> KeyBrokerAttestation {
        let response = try await raw(.GET, "attestation", body: nil, admin: false)
        return try decode(KeyBrokerAttestation.self, response, what: "the attestation answer does not decode")
    }

    /// `GET /importkey`.
    public func importKey() async throws -> KeyBrokerWebKey {
        let response = try await raw(.GET, "importkey", body: nil, admin: false)
        return try decode(KeyBrokerWebKey.self, response, what: "the import key does not decode")
    }

    /// `GET /audit`: the newest `top` records, newest first.
    public func audit(top: Int = 100) async throws -> KeyBrokerAuditLog {
        try await call(KeyBrokerAuditLog.self, .GET, "audit", query: [URLQueryItem(name: "top", value: String(top))])
    }

    /// `GET /audit/refusals`: the newest `top` counts of anonymous release refusals (per minute, key and code),
    /// newest first.
    public func refusals(top: Int = 100) async throws -> KeyBrokerRefusalLog {
        try await call(
            KeyBrokerRefusalLog.self,
            .GET,
            "audit/refusals",
            query: [URLQueryItem(name: "top", value: String(top))]
        )
    }

    /// `POST /replicas/join`: a newcomer's token and key, answered with the keyring wrapped to it.
    public func join(_ request: ReplicaJoinRequest) async throws -> ReplicaJoinGrant {
        try await call(ReplicaJoinGrant.self, .POST, "replicas/join", body: request)
    }

    // MARK: Transport

    private func call<T: Decodable>(
        _ type: T.Type,
        _ method: HTTPMethod,
        _ path: String,
        query: [URLQueryItem] = []
    ) async throws -> T {
        try await call(type, method, path, body: [String: String]?.none, query: query)
    }

    private func call<T: Decodable, Body: Encodable>(
        _ type: T.Type,
        _ method: HTTPMethod,
        _ path: String,
        body: Body?,
        query: [URLQueryItem] = []
    ) async throws -> T {
        let data = try body.map { Data(try WireJSON.encode($0)) }
        let response = try await raw(method, path, body: data, admin: true, query: query)
        return try decode(type, response, what: "the answer to \(method) /\(path) does not decode")
    }

    func decode<T: Decodable>(
        _ type: T.Type,
        _ response: (status: Int, body: [UInt8]),
        what: String
    ) throws
        -> T
    {
        do {
            return try WireJSON.decode(type, from: response.body)
        } catch {
            throw AttestationClient.Failure(status: response.status, code: "BadResponse", message: what)
        }
    }

    /// One request; `bearer` (when given) is sent as the `Authorization` instead of the administrator's token.
    func raw(
        _ method: HTTPMethod,
        _ path: String,
        body: Data?,
        admin: Bool,
        query: [URLQueryItem] = [],
        bearer: String? = nil
    ) async throws -> (status: Int, body: [UInt8]) {
        var components = URLComponents(url: endpoint.appendingPathComponent(path), resolvingAgainstBaseURL: false)
        components?.queryItems = [URLQueryItem(name: "api-version", value: apiVersion)] + query
        guard let url = components?.url?.absoluteString else {
            throw AttestationClient.Failure(status: 0, code: "BadRequest", message: "cannot form a URL for \(path)")
        }
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let bearer {
            request.headers.add(name: "Authorization", value: "Bearer " + bearer)
        } else if admin, let adminToken {
            request.headers.add(name: "Authorization", value: "Bearer " + adminToken)
        }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: body))
        }
        let response: HTTPClientResponse
        do {
            let client: HTTPClient
            if let http { client = http } else { client = try await trust.httpClient(for: endpoint) }
            response = try await client.execute(request, timeout: .seconds(60))
        } catch let failure as AttestationClient.Failure {
            throw failure
        } catch {
            throw AttestationClient.Failure(status: 0, code: "Unreachable", message: "\(url): \(error)")
        }
        try AttestationClient.refuseRedirect(response, url: url)
        let bytes = Array(buffer: try await response.body.collect(upTo: 4 << 20))
        guard (200..<300).contains(Int(response.status.code)) else {
            let error = (try? WireJSON.decode(ErrorResponse.self, from: bytes))?.error
            throw AttestationClient.Failure(
                status: Int(response.status.code),
                code: error?.code ?? "HTTP\(response.status.code)",
                message: error?.message ?? String(decoding: bytes.prefix(500), as: UTF8.self)
            )
        }
        return (Int(response.status.code), bytes)
    }
}
