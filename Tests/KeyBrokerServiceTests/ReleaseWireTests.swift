import AttestationAPI
import AttestationService
import Foundation
import Hummingbird
import HummingbirdTesting
import KeyBrokerInterface
import TestSupport
import Testing

@testable import KeyBrokerService

/// The release's host-side JSON without `JSONDecoder`/`JSONEncoder` per request (issue 12 item 12): the common body
/// reads as `JSONDecoder` reads it, anything else is left to the decoder (same answers, same errors), and the answer
/// and the audit record's claims are the encoder's bytes. A release whose audit record can't be written is not
/// answered.
@Suite("KeyBrokerService: release wire fast path")
struct ReleaseWireTests {
    static func decoded(_ text: String) -> KeyReleaseParameters? {
        try? WireJSON.decode(KeyReleaseParameters.self, from: Array(text.utf8))
    }

    @Test func theCommonBodyReadsAsTheDecoderReadsIt() throws {
        for body in [
            #"{"target":"a.b.c"}"#,
            #" { "enc" : "RSA_AES_KEY_WRAP_256" , "target" : "a.b.c", "nonce":"n-1" } "#,
            #"{"target":"esc \" \\ \/ \n \u00e9 \ud83d\ude00 é","nonce":""}"#,
            #"{"nonce":"x","target":""}"#,
            "{\"target\":\"" + String(repeating: "t", count: 70_000) + "\"}",
        ] {
            let fast = try #require(KeyBrokerServer.releaseParameters(Array(body.utf8)), "\(body.prefix(80))")
            #expect(fast == Self.decoded(body), "\(body.prefix(80))")
        }
    }

    @Test func everyOtherBodyIsLeftToTheDecoder() {
        for body in [
            #"{"target":"a","extra":1}"#,  // unknown member: the decoder names it
            #"{"target":1}"#,  // wrong type
            #"{"target":"a","nonce":null}"#,  // null: the decoder decides
            #"{"target":"a","target":"b"}"#,  // named twice
            #"{"nonce":"a"}"#,  // no target
            #"["target","a"]"#, #""target""#, "", "{", #"{"target":"a"} x"#, #"{"target":"a",}"#,
            #"{"target":"\ud800"}"#,  // lone surrogate
            "{\"target\":\"a\u{01}\"}",  // control character
        ] {
            #expect(KeyBrokerServer.releaseParameters(Array(body.utf8)) == nil, "\(body)")
        }
    }

    @Test func theAnswerAndTheAuditClaimsAreTheEncodersBytes() throws {
        for value in [
            "header.payload.signature", "", "q\"u\\o/te\n\u{7}é😀", String(repeating: "x", count: 5000),
            "eyJhbGciOiJSUzI1NiJ9.e30.c2ln-_", "slash/é😀 \u{7f}", "\u{1f}", "\\",
        ] {
            let result = KeyReleaseResult(value: value)
            #expect(Array(KeyBrokerServer.answerText(result).utf8) == (try WireJSON.encode(result)))
        }
        for claims in [
            ["x-ms-sgx-mrsigner": "ab", "x-ms-sgx-svn": "2", "x-ms-attestation-type": "sgx"],
            ["b": "q\"u\\o/te\n\u{1}é😀", "a": "", "A": "z", "é": "non-ASCII name"],
            ["x-ms-sgx-svn": "2", "x-ms-sgx-product-id": "3", "tdx_mrtd": "ab/cd+é😀 \u{7f}", "Z": "", "_": "_"],
            ["only": "one"],
        ] {
            #expect(KeyBrokerCore.auditText(claims) == (try WireJSON.string(claims)))
        }
        #expect(KeyBrokerCore.auditText([:]) == nil)
    }

    /// Through the routes: the fast body and the decoder's errors answer as before.
    @Test func releasesThroughTheRoutesAnswerAsBefore() async throws {
        try await KeyBrokerRoutesTests.with { fixture in
            try await KeyBrokerRoutesTests.application(fixture.core).test(.router) { client in
                let created = try await KeyBrokerRoutesTests.send(
                    client,
                    .put,
                    "/keys/k/create",
                    #"{"kty":"RSA","attributes":{"exportable":true},"release_policy":{"data":""#
                        + KeyBrokerRoutesTests.policy + #""}}"#
                )
                let version = try #require(
                    try WireJSON.decode(KeyBundle.self, from: Array(created.text.utf8)).key.kid?.split(separator: "/")
                        .last
                )
                let uri = "/keys/k/\(version)/release"
                let granted = try await KeyBrokerRoutesTests.send(
                    client,
                    .post,
                    uri,
                    #"{"target":"good"}"#,
                    admin: false
                )
                #expect(granted.status == 200)
                #expect(granted.text == #"{"value":"header.payload.signature"}"#)
                let unknown = try await KeyBrokerRoutesTests.send(
                    client,
                    .post,
                    uri,
                    #"{"target":"good","extra":1}"#,
                    admin: false
                )
                #expect(unknown.status == 400)
                #expect(KeyBrokerRoutesTests.errorCode(unknown.text) == "BadParameter")
                #expect(unknown.text.contains("extra"), "\(unknown.text)")
                let twice = try await KeyBrokerRoutesTests.send(
                    client,
                    .post,
                    uri,
                    #"{"target":"forged","target":"good"}"#,
                    admin: false
                )
                // JSONDecoder's answer to a member named twice, as before this change.
                let expected = Self.decoded(#"{"target":"forged","target":"good"}"#)
                if expected?.target == "good" {
                    #expect(twice.status == 200, "\(twice.text)")
                } else {
                    #expect(twice.status != 200, "\(twice.text)")
                }
                let notJSON = try await KeyBrokerRoutesTests.send(client, .post, uri, "target=good", admin: false)
                #expect(notJSON.status == 400)
                #expect(KeyBrokerRoutesTests.errorCode(notJSON.text) == "BadParameter")
                let audit = try await fixture.core.auditLog(limit: 10, credential: KeyBrokerRoutesTests.admin)
                let granting = try #require(audit.value.first { $0.result == "granted" })
                #expect(granting.claims == #"{"x-ms-sgx-mrsigner":"ab"}"#)
            }
        }
    }

    /// A store whose audit writes fail: every release decision is refused an answer (500), nothing is released.
    struct FailingAuditStore: KeyBrokerStore {
        let base: SQLiteKeyBrokerStore
        func migrate() async throws { try await base.migrate() }
        func insertVersion(_ version: StoredKeyVersion, created: Date) async throws -> Bool {
            try await base.insertVersion(version, created: created)
        }
        func version(name: String, version: String) async throws -> StoredKeyVersion? {
            try await base.version(name: name, version: version)
        }
        func latestVersion(name: String) async throws -> StoredKeyVersion? { try await base.latestVersion(name: name) }
        func versions(name: String) async throws -> [StoredKeyVersion] { try await base.versions(name: name) }
        func latestVersions(limit: Int) async throws -> [StoredKeyVersion] {
            try await base.latestVersions(limit: limit)
        }
        func replaceVersion(_ version: StoredKeyVersion) async throws -> Bool { try await base.replaceVersion(version) }
        func setDeleted(name: String, at: Date?) async throws -> Bool { try await base.setDeleted(name: name, at: at) }
        func deletedKey(name: String) async throws -> (version: StoredKeyVersion, deleted: Date)? {
            try await base.deletedKey(name: name)
        }
        func purge(name: String) async throws -> Bool { try await base.purge(name: name) }
        func appendAudit(_ entry: KeyBrokerAuditEntry) async throws {
            throw CancellationError()
        }
        func appendAudit(batch entries: [KeyBrokerAuditEntry]) async throws {
            throw CancellationError()
        }
        func auditEntries(limit: Int) async throws -> [KeyBrokerAuditEntry] {
            try await base.auditEntries(limit: limit)
        }
        func countRefusals(_ counts: [KeyBrokerRefusalCount]) async throws { throw CancellationError() }
        func pruneRefusals(before minute: Int64, keepingAtMost limit: Int) async throws {
            try await base.pruneRefusals(before: minute, keepingAtMost: limit)
        }
        func refusalCounts(limit: Int) async throws -> [KeyBrokerRefusalCount] {
            try await base.refusalCounts(limit: limit)
        }
        func keyringID(orInsert candidate: String) async throws -> String {
            try await base.keyringID(orInsert: candidate)
        }
        func keyringID() async throws -> String? { try await base.keyringID() }
        func close() async throws { try await base.close() }
    }

    @Test func aReleaseWhoseAuditRecordCannotBeWrittenIsNotAnswered() async throws {
        let base = try await SQLiteKeyBrokerStore.open(directory: try Fixtures.temporaryDirectory() + "/data")
        let version = String(repeating: "c", count: 32)
        let key = StoredKeyVersion(
            key: StoredKey(
                name: "k",
                version: version,
                type: .aes256,
                keyOperations: ["wrapKey"],
                attributes: BrokerKeyAttributes(exportable: true, releasePolicy: [1], immutable: false),
                publicKey: nil,
                blob: [1, 2, 3]
            ),
            attributes: KeyAttributes(enabled: true, exportable: true),
            tags: nil
        )
        #expect(try await base.insertVersion(key, created: Date()))
        let core = try await KeyBrokerCore(
            store: FailingAuditStore(base: base),
            engine: FakeBrokerEngine(),
            configuration: .init(adminCredential: nil)
        )
        let answers = await withTaskGroup(of: String.self) { group in
            for index in 0..<20 {
                group.addTask {
                    do {
                        let result = try await core.release(
                            name: "k",
                            version: version,
                            parameters: KeyReleaseParameters(target: index.isMultiple(of: 2) ? "good" : "forged")
                        )
                        return "released " + result.value
                    } catch let error as ServiceError {
                        return "\(error.status.code) \(error.message)"
                    } catch {
                        return "\(error)"
                    }
                }
            }
            var all: [String] = []
            for await answer in group { all.append(answer) }
            return all
        }
        #expect(answers.count == 20)
        for answer in answers {
            #expect(answer == "500 the audit log could not be written", "\(answer)")
        }
        try await base.close()
    }
}
