import AttestationAPI
import AttestationService
import EnclaveCore
import Foundation
import KeyBrokerInterface
import KeyBrokerService
import TestSupport
import Testing

/// A name an owner imported a key under (with a release policy) stays the owner's: the administrator can't add a
/// version under it (create, rotate, an import), and an owner can't import under a name the administrator holds. A
/// client encrypting to a name's newest version would otherwise switch to a key whose private part the broker's host
/// holds or can unwrap with (review 5, finding 2).
@Suite("Owner-imported key names")
struct OwnerKeyNameTests {
    static let admin = KeyBrokerRoutesTests.admin

    static var policy: KeyReleasePolicy { KeyReleasePolicy(data: KeyBrokerRoutesTests.policy, immutable: true) }

    /// An owner's import (the stand-in engine takes any wrapped bytes; the real enclave checks the intent).
    static func ownerImport(_ core: KeyBrokerCore, _ name: String) async throws -> KeyBundle {
        try await core.importKey(
            name: name,
            parameters: KeyImportParameters(
                key: KeyBrokerWebKey(
                    kty: "EC",
                    keyOps: ["wrapKey"],
                    crv: "P-256",
                    keyHSM: Base64URL.encode(Array(repeating: 7, count: 16))
                ),
                attributes: KeyAttributes(exportable: true),
                releasePolicy: policy
            ),
            credential: admin
        )
    }

    /// An import without a release policy (the administrator's: every operation).
    static func plainImport(_ core: KeyBrokerCore, _ name: String) async throws -> KeyBundle {
        try await core.importKey(
            name: name,
            parameters: KeyImportParameters(
                key: KeyBrokerWebKey(kty: "EC", crv: "P-256", keyHSM: Base64URL.encode(Array(repeating: 7, count: 16)))
            ),
            credential: admin
        )
    }

    static func create(_ core: KeyBrokerCore, _ name: String) async throws -> KeyBundle {
        try await core.createKey(
            name: name,
            parameters: KeyCreateParameters(kty: "EC", crv: "P-256", keyOps: ["wrapKey", "unwrapKey"]),
            credential: admin
        )
    }

    /// The code of the `ServiceError` `body` throws (nil: it succeeded).
    static func refusal(_ body: () async throws -> Void) async -> (status: Int, code: String)? {
        do {
            try await body()
            return nil
        } catch let error as ServiceError {
            return (Int(error.status.code), error.code)
        } catch {
            return (0, "\(error)")
        }
    }

    @Test(
        "The administrator can't create, rotate or import a version under an owner's name; the owner's key stays newest"
    )
    func administratorCannotTakeAnOwnersName() async throws {
        try await KeyBrokerRoutesTests.with { fixture in
            let core = fixture.core
            let owners = try await Self.ownerImport(core, "owners-key")
            for (what, attempt) in [
                ("create", { _ = try await Self.create(core, "owners-key") }),
                ("rotate", { _ = try await core.rotateKey(name: "owners-key", credential: Self.admin) }),
                ("import without a policy", { _ = try await Self.plainImport(core, "owners-key") }),
                ("import with a policy", { _ = try await Self.ownerImport(core, "owners-key") }),
            ] as [(String, () async throws -> Void)] {
                let refusal = await Self.refusal(attempt)
                #expect(refusal?.status == 409, "\(what): \(String(describing: refusal))")
                #expect(refusal?.code == "KeyOwnedByImporter", "\(what): \(String(describing: refusal))")
            }
            let newest = try await core.key(name: "owners-key", version: nil, credential: Self.admin)
            #expect(newest.key == owners.key)
            #expect(newest.attributes.origin == .owner)
            #expect(try await fixture.store.versions(name: "owners-key").count == 1)
            // Every refusal is audited as a failed call with its code.
            let failed = try await core.auditLog(limit: 100, credential: Self.admin).value.filter {
                $0.key == "owners-key" && $0.result == "failed"
            }
            #expect(failed.count == 4 && failed.allSatisfy { $0.reason.hasPrefix("KeyOwnedByImporter") }, "\(failed)")
        }
    }

    @Test("An owner can't import under a name the administrator holds, nor a second version under its own")
    func ownerImportNeedsAFreshName() async throws {
        try await KeyBrokerRoutesTests.with { fixture in
            let core = fixture.core
            _ = try await Self.create(core, "operators-key")
            let taken = await Self.refusal { _ = try await Self.ownerImport(core, "operators-key") }
            #expect(taken?.status == 409 && taken?.code == "KeyNameInUse", "\(String(describing: taken))")
            // The administrator's name keeps its own versions (rotate, an import without a policy).
            _ = try await core.rotateKey(name: "operators-key", credential: Self.admin)
            _ = try await Self.plainImport(core, "operators-key")
            let versions = try await core.listVersions(name: "operators-key", credential: Self.admin).value
            #expect(versions.count == 3 && versions.allSatisfy { $0.attributes.origin == .administrator })
            // An owner's first import under a fresh name is stored as the owner's.
            let owners = try await Self.ownerImport(core, "owners-key")
            #expect(owners.attributes.origin == .owner)
        }
    }

    @Test("An owner's name stays the owner's after delete and purge: no version of any origin goes under it")
    func purgedOwnersNameIsRetired() async throws {
        try await KeyBrokerRoutesTests.with { fixture in
            let core = fixture.core
            _ = try await Self.ownerImport(core, "owners-key")
            _ = try await core.deleteKey(name: "owners-key", credential: Self.admin)
            // Deleted: still the owner's (not "recover or purge first", which would invite a purge).
            let deleted = await Self.refusal { _ = try await Self.create(core, "owners-key") }
            #expect(deleted?.code == "KeyOwnedByImporter", "\(String(describing: deleted))")
            try await core.purgeKey(name: "owners-key", credential: Self.admin)
            for (what, attempt) in [
                ("create", { _ = try await Self.create(core, "owners-key") }),
                ("import without a policy", { _ = try await Self.plainImport(core, "owners-key") }),
                ("import with a policy", { _ = try await Self.ownerImport(core, "owners-key") }),
            ] as [(String, () async throws -> Void)] {
                let refusal = await Self.refusal(attempt)
                #expect(refusal?.code == "KeyOwnedByImporter", "\(what): \(String(describing: refusal))")
            }
            #expect(try await fixture.store.versions(name: "owners-key").isEmpty)
        }
    }

    @Test("The administrator can't replace the release policy of an owner's version, immutable or not")
    func administratorCannotReplaceAnOwnersPolicy() async throws {
        try await KeyBrokerRoutesTests.with { fixture in
            let core = fixture.core
            // An owner's import under a mutable policy, and an administrator's key under one.
            let owners = try await core.importKey(
                name: "owners-key",
                parameters: KeyImportParameters(
                    key: KeyBrokerWebKey(
                        kty: "EC",
                        crv: "P-256",
                        keyHSM: Base64URL.encode(Array(repeating: 7, count: 16))
                    ),
                    attributes: KeyAttributes(exportable: true),
                    releasePolicy: KeyReleasePolicy(data: KeyBrokerRoutesTests.policy, immutable: false)
                ),
                credential: Self.admin
            )
            let operators = try await core.createKey(
                name: "operators-key",
                parameters: KeyCreateParameters(
                    kty: "EC",
                    crv: "P-256",
                    attributes: KeyAttributes(exportable: true),
                    releasePolicy: KeyReleasePolicy(data: KeyBrokerRoutesTests.policy, immutable: false)
                ),
                credential: Self.admin
            )
            let ownersVersion = String(try #require(owners.key.kid?.split(separator: "/").last))
            let operatorsVersion = String(try #require(operators.key.kid?.split(separator: "/").last))
            let permissive = KeyReleasePolicy(data: Self.permissivePolicy, immutable: false)
            for policy in [permissive, KeyReleasePolicy(data: Self.permissivePolicy, immutable: true)] {
                let refusal = await Self.refusal {
                    _ = try await core.updatePolicy(
                        name: "owners-key",
                        version: ownersVersion,
                        policy: policy,
                        credential: Self.admin
                    )
                }
                #expect(
                    refusal?.status == 409 && refusal?.code == "KeyOwnedByImporter",
                    "\(String(describing: refusal))"
                )
            }
            let kept = try await core.key(name: "owners-key", version: ownersVersion, credential: Self.admin)
            #expect(kept.releasePolicy?.data == KeyBrokerRoutesTests.policy)
            #expect(kept.releasePolicy?.immutable == false)
            // The administrator's own key keeps a replaceable policy.
            let replaced = try await core.updatePolicy(
                name: "operators-key",
                version: operatorsVersion,
                policy: permissive,
                credential: Self.admin
            )
            #expect(replaced.releasePolicy?.data == Self.permissivePolicy)
            let failed = try await core.auditLog(limit: 100, credential: Self.admin).value.filter {
                $0.operation == "updatePolicy" && $0.result == "failed"
            }
            #expect(failed.count == 2 && failed.allSatisfy { $0.reason.hasPrefix("KeyOwnedByImporter") }, "\(failed)")
        }
    }

    /// A policy any token of the test authority satisfies (an attacker's).
    static let permissivePolicy = Base64URL.encode(
        Array(
            #"{"version":"1.0.0","anyOf":[{"authority":"https://authority.test","allOf":[{"claim":"x-ms-sgx-svn","greaterOrEquals":0}]}]}"#
                .utf8
        )
    )

    @Test("SQLite: owners' and administrators' inserts racing on one name leave it one origin's")
    func sqliteRace() async throws {
        let store = try await SQLiteKeyBrokerStore.open(directory: try Fixtures.temporaryDirectory() + "/data")
        do {
            try await Self.storeRules(store)
            try await Self.race([store])
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }

    @Test("SQLite: a database from before origins gains the column; its versions count as not an owner's")
    func sqliteMigration() async throws {
        let directory = try Fixtures.temporaryDirectory() + "/data"
        let old = try await SQLiteKeyBrokerStore.open(directory: directory)
        // The schema before origins: no column, no trigger; a version stored then.
        try await old.execute("DROP TRIGGER kb_keys_owner_name")
        try await old.execute("ALTER TABLE kb_keys DROP COLUMN origin")
        var legacy = Self.stored("legacy", version: 0, origin: nil)
        legacy.attributes.origin = nil
        try await old.execute(
            "INSERT INTO kb_keys (name, version, record, created) VALUES ('legacy', '\(legacy.version)', '"
                + (try WireJSON.string(legacy)) + "', 0)"
        )
        try await old.close()
        let store = try await SQLiteKeyBrokerStore.open(directory: directory)
        do {
            #expect(try await store.versions(name: "legacy").map(\.attributes.origin) == [nil])
            await #expect(throws: KeyNameRefusal.inUse) {
                _ = try await store.insertVersion(Self.stored("legacy", version: 1, origin: .owner), created: Date())
            }
            #expect(
                try await store.insertVersion(
                    Self.stored("legacy", version: 2, origin: .administrator),
                    created: Date()
                )
            )
            try await Self.storeRules(store)
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }

    /// A version of `name` for the store tests.
    static func stored(_ name: String, version: Int, origin: KeyOrigin?) -> StoredKeyVersion {
        StoredKeyVersion(
            key: StoredKey(
                name: name,
                version: String(format: "%032x", version),
                type: .aes256,
                keyOperations: origin == .owner ? ["wrapKey"] : ["wrapKey", "unwrapKey"],
                attributes: BrokerKeyAttributes(
                    exportable: origin == .owner,
                    releasePolicy: origin == .owner ? Array(#"{"version":"1.0.0"}"#.utf8) : nil,
                    immutable: false
                ),
                publicKey: nil,
                blob: [UInt8](repeating: 1, count: 40)
            ),
            attributes: KeyAttributes(enabled: true, exportable: origin == .owner, origin: origin),
            tags: nil
        )
    }

    /// The store's refusals one by one (either store).
    static func storeRules(_ store: any KeyBrokerStore) async throws {
        try await replaceRules(store)
        #expect(try await store.insertVersion(stored("admins", version: 1, origin: .administrator), created: Date()))
        #expect(try await store.insertVersion(stored("admins", version: 2, origin: .administrator), created: Date()))
        await #expect(throws: KeyNameRefusal.inUse) {
            _ = try await store.insertVersion(stored("admins", version: 3, origin: .owner), created: Date())
        }
        #expect(try await store.insertVersion(stored("owners", version: 1, origin: .owner), created: Date()))
        for (version, origin) in [(2, KeyOrigin.administrator), (3, .owner)] {
            await #expect(throws: KeyNameRefusal.ownedByImporter) {
                _ = try await store.insertVersion(stored("owners", version: version, origin: origin), created: Date())
            }
        }
        // Deleted: the administrator's name is refused as deleted (false), the owner's as the owner's.
        #expect(try await store.setDeleted(name: "admins", at: Date()))
        #expect(
            try await store.insertVersion(stored("admins", version: 4, origin: .administrator), created: Date())
                == false
        )
        #expect(try await store.setDeleted(name: "owners", at: Date()))
        #expect(try await store.purge(name: "owners"))
        await #expect(throws: KeyNameRefusal.ownedByImporter) {
            _ = try await store.insertVersion(stored("owners", version: 4, origin: .administrator), created: Date())
        }
        #expect(try await store.versions(name: "owners").isEmpty)
    }

    /// An owner's version is not replaced, whatever origin the replacement claims; the administrator's is.
    static func replaceRules(_ store: any KeyBrokerStore) async throws {
        let owners = stored("replaced-owners", version: 1, origin: .owner)
        let admins = stored("replaced-admins", version: 1, origin: .administrator)
        #expect(try await store.insertVersion(owners, created: Date()))
        #expect(try await store.insertVersion(admins, created: Date()))
        for claimed in [KeyOrigin.owner, .administrator, nil] {
            var replacement = owners
            replacement.key.attributes = BrokerKeyAttributes(
                exportable: true,
                releasePolicy: [0x7B, 0x7D],
                immutable: false
            )
            replacement.attributes.origin = claimed
            await #expect(throws: KeyNameRefusal.ownedByImporter, "\(String(describing: claimed))") {
                _ = try await store.replaceVersion(replacement)
            }
        }
        #expect(try await store.version(name: owners.name, version: owners.version) == owners)
        var replacement = admins
        replacement.key.attributes.immutable = true
        #expect(try await store.replaceVersion(replacement))
        #expect(try await store.version(name: admins.name, version: admins.version) == replacement)
        // A version that does not exist is not replaced (and not refused as an owner's).
        #expect(try await store.replaceVersion(stored("replaced-none", version: 1, origin: .administrator)) == false)
    }

    /// Owners' and administrators' inserts on fresh names at once, spread over `stores` (instances on one
    /// database): each name ends up one origin's, and an owner's with exactly one version.
    static func race(_ stores: [any KeyBrokerStore]) async throws {
        for round in 0..<8 {
            let name = "raced-\(round)"
            let attempts = 12
            let outcomes = try await withThrowingTaskGroup(of: (KeyOrigin, Bool).self) { group in
                for index in 0..<attempts {
                    let store = stores[index % stores.count]
                    // Alternate who goes first from round to round.
                    let origin: KeyOrigin = (index + round).isMultiple(of: 2) ? .owner : .administrator
                    let version = stored(name, version: index, origin: origin)
                    group.addTask {
                        do {
                            return (origin, try await store.insertVersion(version, created: Date()))
                        } catch is KeyNameRefusal {
                            return (origin, false)
                        }
                    }
                }
                var outcomes: [(KeyOrigin, Bool)] = []
                for try await outcome in group { outcomes.append(outcome) }
                return outcomes
            }
            let kept = try await stores[0].versions(name: name)
            let origins = Set(kept.map(\.attributes.origin))
            #expect(origins.count == 1, "\(name): \(origins)")
            if origins == [.owner] {
                #expect(kept.count == 1, "\(name): an owner's name holds one version, not \(kept.count)")
            } else {
                #expect(kept.count == attempts / 2, "\(name): every administrator's insert kept")
            }
            #expect(outcomes.filter(\.1).count == kept.count)
        }
    }
}
