import AttestationAPI
import AttestationService
import EnclaveCore
import Foundation
import Hummingbird
import HummingbirdTesting
import KeyBrokerService
import TestSupport
import Testing

/// The broker's HTTP surface over an in-process router, with a stand-in engine (``FakeBrokerEngine``).
@Suite("Key broker routes")
struct KeyBrokerRoutesTests {
    static let admin = "test-admin-token-0123456789"
    static let policy = Base64URL.encode(
        Array(
            #"{"version":"1.0.0","anyOf":[{"authority":"https://authority.test","allOf":[{"claim":"x-ms-sgx-svn","greaterOrEquals":2}]}]}"#
                .utf8
        )
    )

    struct Fixture {
        let core: KeyBrokerCore
        let store: SQLiteKeyBrokerStore
        let directory: String
    }

    static func with(_ body: (Fixture) async throws -> Void) async throws {
        let directory = try Fixtures.temporaryDirectory() + "/data"
        let store = try await SQLiteKeyBrokerStore.open(directory: directory)
        let core = try await KeyBrokerCore(
            store: store,
            engine: FakeBrokerEngine(),
            configuration: .init(adminCredential: AdminCredential(token: admin)),
            baseURL: "https://broker.test"
        )
        do {
            try await body(Fixture(core: core, store: store, directory: directory))
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }

    static func application(_ core: KeyBrokerCore) throws -> some ApplicationProtocol {
        try KeyBrokerServer.application(core: core, tls: nil)
    }

    static func send(
        _ client: some TestClientProtocol,
        _ method: HTTPRequest.Method,
        _ uri: String,
        _ body: String? = nil,
        admin: Bool = true
    ) async throws -> (status: Int, text: String) {
        var headers: HTTPFields = [.contentType: "application/json"]
        if admin { headers[.authorization] = "Bearer \(Self.admin)" }
        let response = try await client.execute(
            uri: uri,
            method: method,
            headers: headers,
            body: body.map { ByteBuffer(string: $0) }
        )
        return (Int(response.status.code), String(buffer: response.body))
    }

    static func errorCode(_ text: String) -> String? {
        (try? WireJSON.decode(ErrorResponse.self, from: Array(text.utf8)))?.error.code
    }

    @Test("Create, get, list, versions, rotate, delete, recover, purge: Key Vault shapes, public parts only")
    func lifecycle() async throws {
        try await Self.with { fixture in
            try await Self.application(fixture.core).test(.router) { client in
                let created = try await Self.send(
                    client,
                    .put,
                    "/keys/data-key/create?api-version=7.4",
                    #"{"kty":"EC-HSM","crv":"P-256","attributes":{"exportable":true},"release_policy":{"data":""#
                        + Self.policy + #"","immutable":false}}"#
                )
                #expect(created.status == 200, "\(created.text)")
                let bundle = try WireJSON.decode(KeyBundle.self, from: Array(created.text.utf8))
                #expect(bundle.key.kty == "EC-HSM")
                #expect(bundle.key.kid?.hasPrefix("https://broker.test/keys/data-key/") == true)
                #expect(bundle.attributes.exportable == true)
                #expect(bundle.attributes.recoveryLevel == "Recoverable+Purgeable")
                #expect(bundle.releasePolicy?.data == Self.policy)
                #expect(!created.text.contains("must-never-appear"), "a private member leaked")
                let version = try #require(bundle.key.kid?.split(separator: "/").last.map(String.init))

                let got = try await Self.send(client, .get, "/keys/data-key/\(version)")
                #expect(got.status == 200)
                #expect(try WireJSON.decode(KeyBundle.self, from: Array(got.text.utf8)).key == bundle.key)

                let rotated = try await Self.send(client, .post, "/keys/data-key/rotate")
                #expect(rotated.status == 200, "\(rotated.text)")
                let versions = try await Self.send(client, .get, "/keys/data-key/versions")
                #expect(try WireJSON.decode(KeyListResult.self, from: Array(versions.text.utf8)).value.count == 2)
                let list = try await Self.send(client, .get, "/keys")
                let items = try WireJSON.decode(KeyListResult.self, from: Array(list.text.utf8)).value
                #expect(items.map(\.kid) == ["https://broker.test/keys/data-key"])

                let deleted = try await Self.send(client, .delete, "/keys/data-key")
                #expect(deleted.status == 200, "\(deleted.text)")
                let deletedBundle = try WireJSON.decode(DeletedKeyBundle.self, from: Array(deleted.text.utf8))
                #expect(deletedBundle.recoveryId == "https://broker.test/deletedkeys/data-key")
                #expect(deletedBundle.scheduledPurgeDate == deletedBundle.deletedDate + 90 * 86_400)
                #expect(try await Self.send(client, .get, "/keys/data-key").status == 404)
                let again = try await Self.send(client, .put, "/keys/data-key/create", #"{"kty":"RSA"}"#)
                #expect(again.status == 409, "a deleted name must not get new versions: \(again.text)")
                #expect(try await Self.send(client, .get, "/deletedkeys/data-key").status == 200)
                #expect(try await Self.send(client, .post, "/deletedkeys/data-key/recover").status == 200)
                #expect(try await Self.send(client, .get, "/keys/data-key").status == 200)
                #expect(try await Self.send(client, .delete, "/keys/data-key").status == 200)
                #expect(try await Self.send(client, .delete, "/deletedkeys/data-key").status == 204)
                #expect(try await Self.send(client, .get, "/deletedkeys/data-key").status == 404)
            }
        }
    }

    @Test("Management needs the administrator token; release does not (the token is the credential)")
    func adminAuthentication() async throws {
        try await Self.with { fixture in
            try await Self.application(fixture.core).test(.router) { client in
                for (method, uri) in [
                    (HTTPRequest.Method.get, "/keys"), (.put, "/keys/k/create"), (.get, "/keys/k"), (.get, "/audit"),
                    (.delete, "/keys/k"), (.post, "/replicas/join"),
                ] {
                    let body =
                        method == .put
                        ? #"{"kty":"RSA"}"# : (uri == "/replicas/join" ? #"{"token":"t","key":"k"}"# : nil)
                    let answer = try await Self.send(client, method, uri, body, admin: false)
                    #expect(answer.status == 401, "\(method) \(uri): \(answer.text)")
                    #expect(Self.errorCode(answer.text) == "Unauthorized")
                }
                var headers: HTTPFields = [.authorization: "Bearer wrong-token-wrong-token"]
                headers[.contentType] = "application/json"
                let wrong = try await client.execute(uri: "/keys", method: .get, headers: headers)
                #expect(wrong.status == .unauthorized)

                let created = try await Self.send(
                    client,
                    .put,
                    "/keys/k/create",
                    #"{"kty":"RSA","attributes":{"exportable":true},"release_policy":{"data":""# + Self.policy + #""}}"#
                )
                let version = try #require(
                    try WireJSON.decode(KeyBundle.self, from: Array(created.text.utf8)).key.kid?.split(separator: "/")
                        .last
                )
                let released = try await Self.send(
                    client,
                    .post,
                    "/keys/k/\(version)/release",
                    #"{"target":"good"}"#,
                    admin: false
                )
                #expect(released.status == 200, "\(released.text)")
                #expect(
                    try WireJSON.decode(KeyReleaseResult.self, from: Array(released.text.utf8)).value
                        == "header.payload.signature"
                )
                let current = try await Self.send(client, .post, "/keys/k/release", #"{"target":"good"}"#, admin: false)
                #expect(current.status == 200, "a release without a version is of the current one: \(current.text)")
                let refused = try await Self.send(
                    client,
                    .post,
                    "/keys/k/\(version)/release",
                    #"{"target":"forged"}"#,
                    admin: false
                )
                #expect(refused.status == 403)
                #expect(Self.errorCode(refused.text) == "InvalidSignature")
            }
        }
    }

    @Test("Bad input: unknown members, oversize bodies, bad names, invalid policies, unsupported types — each named")
    func badInput() async throws {
        try await Self.with { fixture in
            try await Self.application(fixture.core).test(.router) { client in
                let unknown = try await Self.send(client, .put, "/keys/k/create", #"{"kty":"RSA","size":2048}"#)
                #expect(unknown.status == 400)
                #expect(Self.errorCode(unknown.text) == "BadParameter")
                #expect(unknown.text.contains("size"), "\(unknown.text)")
                let large = try await Self.send(
                    client,
                    .put,
                    "/keys/k/create",
                    #"{"kty":"RSA","tags":{"a":""# + String(repeating: "x", count: 300_000) + #""}}"#
                )
                #expect(large.status == 413)
                let name = try await Self.send(client, .put, "/keys/bad_name/create", #"{"kty":"RSA"}"#)
                #expect(name.status == 400)
                #expect(name.text.contains("key name"))
                let weak = try await Self.send(client, .put, "/keys/k/create", #"{"kty":"RSA","key_size":1024}"#)
                #expect(weak.status == 400)
                #expect(weak.text.contains("1024"))
                let noPolicy = try await Self.send(
                    client,
                    .put,
                    "/keys/k/create",
                    #"{"kty":"RSA","attributes":{"exportable":true}}"#
                )
                #expect(noPolicy.status == 400)
                #expect(noPolicy.text.contains("release policy"))
                let badPolicy = Base64URL.encode(
                    Array(
                        #"{"version":"1.0.0","anyOf":[{"authority":"https://a.test","allOf":[{"claim":"c","equal":1}]}]}"#
                            .utf8
                    )
                )
                let invalid = try await Self.send(
                    client,
                    .put,
                    "/keys/k/create",
                    #"{"kty":"RSA","attributes":{"exportable":true},"release_policy":{"data":""# + badPolicy + #""}}"#
                )
                #expect(invalid.status == 400)
                #expect(Self.errorCode(invalid.text) == "InvalidReleasePolicy")
                #expect(invalid.text.contains("anyOf[0].allOf[0]"), "\(invalid.text)")
                let version = try await Self.send(client, .get, "/keys/k/not-a-version")
                #expect(version.status == 400)
                let notJSON = try await Self.send(client, .put, "/keys/k/create", "kty=RSA")
                #expect(notJSON.status == 400)
            }
        }
    }

    @Test("An immutable release policy can't be replaced; a mutable one can")
    func immutablePolicy() async throws {
        try await Self.with { fixture in
            try await Self.application(fixture.core).test(.router) { client in
                var versions: [String] = []
                for immutable in [true, false] {
                    let created = try await Self.send(
                        client,
                        .put,
                        "/keys/k\(immutable)/create",
                        #"{"kty":"RSA","attributes":{"exportable":true},"release_policy":{"data":""# + Self.policy
                            + #"","immutable":\#(immutable)}}"#
                    )
                    let bundle = try WireJSON.decode(KeyBundle.self, from: Array(created.text.utf8))
                    versions.append(String(try #require(bundle.key.kid?.split(separator: "/").last)))
                }
                let body = #"{"contentType":"application/json; charset=utf-8","data":""# + Self.policy + #""}"#
                let refused = try await Self.send(client, .put, "/keys/ktrue/\(versions[0])/releasepolicy", body)
                #expect(refused.status == 409)
                #expect(Self.errorCode(refused.text) == "ReleasePolicyImmutable")
                let accepted = try await Self.send(client, .put, "/keys/kfalse/\(versions[1])/releasepolicy", body)
                #expect(accepted.status == 200, "\(accepted.text)")
            }
        }
    }

    @Test("The audit log records management calls and release decisions, and refuses UPDATE and DELETE")
    func auditAppendOnly() async throws {
        try await Self.with { fixture in
            try await Self.application(fixture.core).test(.router) { client in
                let created = try await Self.send(
                    client,
                    .put,
                    "/keys/k/create",
                    #"{"kty":"RSA","attributes":{"exportable":true},"release_policy":{"data":""# + Self.policy + #""}}"#
                )
                let version = String(
                    try #require(
                        try WireJSON.decode(KeyBundle.self, from: Array(created.text.utf8)).key.kid?.split(
                            separator: "/"
                        ).last
                    )
                )
                _ = try await Self.send(
                    client,
                    .post,
                    "/keys/k/\(version)/release",
                    #"{"target":"forged"}"#,
                    admin: false
                )
                _ = try await Self.send(
                    client,
                    .post,
                    "/keys/k/\(version)/release",
                    #"{"target":"good"}"#,
                    admin: false
                )
                let log = try await Self.send(client, .get, "/audit")
                #expect(log.status == 200)
                let entries = try WireJSON.decode(KeyBrokerAuditLog.self, from: Array(log.text.utf8)).value
                // The forged token's refusal is counted, not audited one row per request (anonymous).
                #expect(entries.map(\.operation) == ["release", "create"])
                #expect(entries.map(\.result) == ["granted", "succeeded"])
                let refusals = try await Self.send(client, .get, "/audit/refusals")
                #expect(refusals.status == 200, "\(refusals.text)")
                let counts = try WireJSON.decode(KeyBrokerRefusalLog.self, from: Array(refusals.text.utf8)).value
                #expect(counts.map(\.key) == ["k"])
                #expect(counts.map(\.code) == ["InvalidSignature"])
                #expect(counts.map(\.count) == [1])
                let anonymous = try await Self.send(client, .get, "/audit/refusals", admin: false)
                #expect(anonymous.status == 401)
                #expect(entries[0].issuer == "https://authority.test")
                #expect(entries[0].jti == "jti-1")
                #expect(entries[0].claims == #"{"x-ms-sgx-mrsigner":"ab"}"#)
                #expect(entries[0].version == version)
            }
            await #expect(throws: (any Error).self) {
                try await fixture.store.execute("UPDATE kb_audit SET result = 'granted'")
            }
            await #expect(throws: (any Error).self) {
                try await fixture.store.execute("DELETE FROM kb_audit")
            }
            let after = try await fixture.store.auditEntries(limit: 10)
            #expect(after.count == 2)
            #expect(after.map(\.result) == ["granted", "succeeded"])
        }
    }

    @Test("A store filled under another keyring refuses to start (a replica must join instead)")
    func keyringMismatch() async throws {
        let directory = try Fixtures.temporaryDirectory() + "/data"
        let store = try await SQLiteKeyBrokerStore.open(directory: directory)
        _ = try await store.keyringID(orInsert: "another-keyring")
        await #expect {
            _ = try await KeyBrokerCore(
                store: store,
                engine: FakeBrokerEngine(),
                configuration: .init(adminCredential: nil)
            )
        } throws: { error in
            (error as? ServiceError)?.code == "KeyringMismatch"
        }
        try await store.close()
    }
}
