public import AttestationAPI
internal import AttestationService
internal import EnclaveCore
internal import Foundation
internal import Hummingbird
internal import KeyBroker
internal import KeyBrokerInterface

extension KeyBrokerCore {
    /// The release attributes of a create or import request, checked: an exportable key needs a policy, a policy
    /// needs an exportable key, the policy must parse (Key Vault's grammar; errors name the JSON path).
    static func releaseAttributes(
        attributes: KeyAttributes?,
        releasePolicy: KeyReleasePolicy?
    ) throws
        -> BrokerKeyAttributes
    {
        let exportable = attributes?.exportable ?? false
        guard let releasePolicy else {
            if exportable {
                throw ServiceError.badRequest(
                    "BadParameter",
                    "an exportable key needs a release policy (release_policy)"
                )
            }
            return BrokerKeyAttributes(exportable: false, releasePolicy: nil, immutable: false)
        }
        guard exportable else {
            throw ServiceError.badRequest(
                "BadParameter",
                "a release policy is only accepted on an exportable key (attributes.exportable: true)"
            )
        }
        return BrokerKeyAttributes(
            exportable: true,
            releasePolicy: try policyBytes(releasePolicy),
            immutable: releasePolicy.immutable ?? false
        )
    }

    /// The policy document of a wire policy, checked.
    static func policyBytes(_ releasePolicy: KeyReleasePolicy) throws -> [UInt8] {
        if let type = releasePolicy.contentType,
            !["application/json;charset=utf-8", "application/json"].contains(
                type.lowercased().replacingOccurrences(of: " ", with: "")
            )
        {
            throw ServiceError.badRequest(
                "BadParameter",
                "release_policy.contentType must be application/json; charset=utf-8, not "
                    + ServiceErrorQuote.quote(String(type.prefix(64)))
            )
        }
        guard releasePolicy.data.utf8.count <= ReleasePolicy.maximumSize * 4 / 3 + 4,
            let bytes = Base64URL.decode(releasePolicy.data)
        else {
            throw ServiceError.badRequest(
                "BadParameter",
                "release_policy.data is not base64url or is larger than \(ReleasePolicy.maximumSize) bytes"
            )
        }
        do {
            _ = try ReleasePolicy(jsonBytes: Data(bytes))
        } catch {
            throw ServiceError.badRequest("InvalidReleasePolicy", "the release policy is invalid: \(error)")
        }
        return bytes
    }

    /// The key type of a create request, checked: RSA 2048/3072, EC P-256/P-384, oct 256.
    static func keyType(_ parameters: KeyCreateParameters) throws -> BrokerKeyType {
        guard let type = BrokerKeyType(keyVaultType: parameters.kty, keySize: parameters.keySize, curve: parameters.crv)
        else {
            throw ServiceError.badRequest(
                "BadParameter",
                "the broker makes RSA (key_size 2048 or 3072), EC (crv P-256 or P-384) and oct (256) keys, not kty "
                    + ServiceErrorQuote.quote(String(parameters.kty.prefix(32)))
                    + (parameters.keySize.map { " key_size \($0)" } ?? "")
                    + (parameters.crv.map { " crv " + ServiceErrorQuote.quote(String($0.prefix(16))) } ?? "")
            )
        }
        return type
    }

    static let allowedOperations: Set<String> = ["encrypt", "decrypt", "wrapKey", "unwrapKey", "sign", "verify"]

    /// Requested `key_ops`, checked (empty: the type's defaults, chosen by the enclave).
    static func operations(_ requested: [String]?) throws -> [String] {
        guard let requested else { return [] }
        guard requested.count <= 6, requested.allSatisfy(allowedOperations.contains) else {
            throw ServiceError.badRequest(
                "BadParameter",
                "key_ops lists operations among " + allowedOperations.sorted().joined(separator: ", ")
            )
        }
        return Array(Set(requested)).sorted()
    }

    static func checkTags(_ tags: [String: String]?) throws {
        guard let tags else { return }
        guard tags.count <= 15, tags.allSatisfy({ $0.key.utf8.count <= 512 && $0.value.utf8.count <= 512 }) else {
            throw ServiceError.badRequest("BadParameter", "at most 15 tags, names and values up to 512 bytes")
        }
    }

    /// The attributes a new version starts with.
    func newAttributes(_ given: KeyAttributes?, exportable: Bool, origin: KeyOrigin, now: Int64) -> KeyAttributes {
        KeyAttributes(
            enabled: given?.enabled ?? true,
            nbf: given?.nbf,
            exp: given?.exp,
            created: now,
            updated: now,
            exportable: exportable,
            recoverableDays: configuration.recoverableDays,
            recoveryLevel: "Recoverable+Purgeable",
            origin: origin
        )
    }

    /// A stored key's public part as a wire JWK: `kty` as Key Vault spells it, `key_ops`, `kid`; never a private
    /// member (read member by member from the enclave's JWK text).
    func publicKey(_ key: StoredKey) -> KeyBrokerWebKey {
        var jwk = KeyBrokerWebKey(
            kid: kid(name: key.name, version: key.version),
            kty: key.type.keyVaultType,
            keyOps: key.keyOperations
        )
        if let text = key.publicKey, let value = try? WireJSON.decode(TokenValue.self, from: Array(text.utf8)),
            case .object(let members) = value
        {
            func member(_ name: String) -> String? {
                if case .string(let text)? = members[name] { return text }
                return nil
            }
            jwk.n = member("n")
            jwk.e = member("e")
            jwk.crv = member("crv")
            jwk.x = member("x")
            jwk.y = member("y")
        }
        return jwk
    }

    /// The bundle of a stored version (public part only).
    func bundle(_ stored: StoredKeyVersion) -> KeyBundle {
        let attributes = stored.key.attributes
        let policy = attributes.releasePolicy.map {
            KeyReleasePolicy(data: Base64URL.encode($0), immutable: attributes.immutable)
        }
        return KeyBundle(
            key: publicKey(stored.key),
            attributes: stored.attributes,
            releasePolicy: policy,
            tags: stored.tags
        )
    }

    /// The broker enclave's refusal codes a refused call answers by name (400); other refusals are `BadParameter`.
    static let namedEnclaveRefusals = [
        KeyBrokerError.importIntentMissing, KeyBrokerError.importIntentMismatch, KeyBrokerError.keyOperationNotAllowed,
    ]

    /// Runs an engine call; an engine's `ServiceError` passes, a refused call keeps its message (and, for
    /// `namedEnclaveRefusals`, its code), anything else is a 500.
    func engineCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as ServiceError {
            throw error
        } catch let error as EnclaveError
            where error.code == .malformedInput || error.code == .invalidSignature || error.code == .limitExceeded
        {
            // The enclave refused the input (a tampered blob, a wrong wrapped key, a policy it rejects). Its refusals
            // of an import's intent keep their names, so that an owner's client can tell a replay from a typo.
            for code in Self.namedEnclaveRefusals where error.reason.hasPrefix(code + ": ") {
                throw ServiceError.badRequest(code, "the broker enclave refused the request: \(error.reason)")
            }
            throw ServiceError.badRequest("BadParameter", "the broker enclave refused the request: \(error.reason)")
        } catch {
            throw ServiceError(
                status: .internalServerError,
                code: "BrokerEnclaveFailed",
                message: "the broker enclave failed the operation: \(error)"
            )
        }
    }

    /// Stores a key the enclave answered as a new version of `origin`. Refused (409) under a deleted name, under a name
    /// an owner imported a key under (`KeyOwnedByImporter`: the administrator's version would take the owner's place
    /// as the newest, the one clients encrypt to), and for an owner's import under a name with versions
    /// (`KeyNameInUse`); the store decides atomically with the insert.
    func insert(
        _ key: StoredKey,
        attributes: KeyAttributes?,
        tags: [String: String]?,
        origin: KeyOrigin
    ) async throws
        -> StoredKeyVersion
    {
        let now = Date()
        let stored = StoredKeyVersion(
            key: key,
            attributes: newAttributes(
                attributes,
                exportable: key.attributes.exportable,
                origin: origin,
                now: Int64(now.timeIntervalSince1970)
            ),
            tags: tags
        )
        let inserted: Bool
        do {
            inserted = try await store.insertVersion(stored, created: now)
        } catch KeyNameRefusal.ownedByImporter {
            throw ServiceError(
                status: .conflict,
                code: "KeyOwnedByImporter",
                message: "an owner imported a key under the name \(key.name) (under a release policy): it takes no "
                    + "other version, not even after a purge; use another name"
            )
        } catch KeyNameRefusal.inUse {
            throw ServiceError(
                status: .conflict,
                code: "KeyNameInUse",
                message: "key \(key.name) has versions already: an owner's key is imported under a name of its own"
            )
        }
        guard inserted else {
            throw ServiceError(
                status: .conflict,
                code: "Conflict",
                message: "key \(key.name) is deleted: recover it (POST /deletedkeys/\(key.name)/recover) or purge it "
                    + "(DELETE /deletedkeys/\(key.name)) first"
            )
        }
        return stored
    }

    /// Runs a management call, auditing its success (`summary` of the result) or its failure.
    func audited<T>(
        _ operation: String,
        key name: String,
        version: String? = nil,
        _ body: () async throws -> (T, version: String?, summary: String)
    ) async throws -> T {
        do {
            let (result, made, summary) = try await body()
            try await audit(operation, key: name, version: made ?? version, result: "succeeded", reason: summary)
            return result
        } catch let error as ServiceError {
            try await audit(
                operation,
                key: name,
                version: version,
                result: "failed",
                reason: "\(error.code): \(error.message)"
            )
            throw error
        }
    }

    /// `PUT|POST /keys/{name}/create`: a new key (or a new version of one) made inside the broker enclave.
    public func createKey(
        name: String,
        parameters: KeyCreateParameters,
        credential: String?
    ) async throws
        -> KeyBundle
    {
        try await audited("create", key: name) {
            try authorize(credential)
            try Self.checkName(name)
            let type = try Self.keyType(parameters)
            let attributes = try Self.releaseAttributes(
                attributes: parameters.attributes,
                releasePolicy: parameters.releasePolicy
            )
            let operations = try Self.operations(parameters.keyOps)
            try Self.checkTags(parameters.tags)
            let request = BrokerCreateKeyRequest(
                name: name,
                version: Self.newVersion(),
                type: type,
                keyOperations: operations,
                attributes: attributes
            )
            let key = try await engineCall { try await engine.createKey(request) }
            let stored = try await insert(
                key,
                attributes: parameters.attributes,
                tags: parameters.tags,
                origin: .administrator
            )
            return (bundle(stored), stored.version, type.rawValue)
        }
    }

    /// `POST /keys/{name}/import`: a key wrapped to the broker's import key, re-wrapped inside the enclave.
    public func importKey(
        name: String,
        parameters: KeyImportParameters,
        credential: String?
    ) async throws
        -> KeyBundle
    {
        try await audited("import", key: name) {
            try authorize(credential)
            try Self.checkName(name)
            let jwk = parameters.key
            guard let type = BrokerKeyType(keyVaultType: jwk.kty, keySize: nil, curve: jwk.crv) ?? Self.rsaType(jwk)
            else {
                throw ServiceError.badRequest("BadParameter", "key.kty must be RSA, EC (crv P-256 or P-384) or oct")
            }
            guard let encoded = jwk.keyHSM, encoded.utf8.count <= 64 << 10, let wrapped = Base64URL.decode(encoded),
                !wrapped.isEmpty
            else {
                throw ServiceError.badRequest(
                    "BadParameter",
                    "key.key_hsm must hold the key wrapped to the import key (GET /importkey), base64url, at most 48 KiB"
                )
            }
            let attributes = try Self.releaseAttributes(
                attributes: parameters.attributes,
                releasePolicy: parameters.releasePolicy
            )
            let operations = try Self.operations(jwk.keyOps)
            try Self.checkTags(parameters.tags)
            let request = BrokerImportKeyRequest(
                name: name,
                version: Self.newVersion(),
                type: type,
                wrappedKey: wrapped,
                keyOperations: operations,
                attributes: attributes
            )
            let key = try await engineCall { try await engine.importKey(request) }
            // Under a release policy the enclave checked the owner's intent (name, operations, policy, pins): the
            // owner's key, whose name no other version may take. Without one the key keeps every operation.
            let stored = try await insert(
                key,
                attributes: parameters.attributes,
                tags: parameters.tags,
                origin: attributes.releasePolicy == nil ? .administrator : .owner
            )
            return (bundle(stored), stored.version, type.rawValue)
        }
    }

    /// An imported RSA key's type: the size is the wrapped key's, so the enclave checks it; 3072 when `n` says so.
    static func rsaType(_ jwk: KeyBrokerWebKey) -> BrokerKeyType? {
        guard jwk.kty == "RSA" || jwk.kty == "RSA-HSM" else { return nil }
        if let n = jwk.n.flatMap({ Base64URL.decode($0) }), n.drop(while: { $0 == 0 }).count == 384 { return .rsa3072 }
        return .rsa2048
    }

    /// `GET /keys/{name}` (latest) or `GET /keys/{name}/{version}`: the public part.
    public func key(name: String, version: String?, credential: String?) async throws -> KeyBundle {
        try authorize(credential)
        return bundle(try await stored(name: name, version: version))
    }

    func stored(name: String, version: String?) async throws -> StoredKeyVersion {
        try Self.checkName(name)
        if let version, !version.isEmpty {
            try Self.checkVersion(version)
            guard let stored = try await store.version(name: name, version: version) else {
                throw ServiceError(status: .notFound, code: "KeyNotFound", message: "no key \(name) version \(version)")
            }
            return stored
        }
        guard let stored = try await store.latestVersion(name: name) else {
            throw ServiceError(status: .notFound, code: "KeyNotFound", message: "no key \(name)")
        }
        return stored
    }

    /// `GET /keys`: every key (its newest version's attributes).
    public func listKeys(credential: String?) async throws -> KeyListResult {
        try authorize(credential)
        let latest = try await store.latestVersions(limit: configuration.listLimit)
        return KeyListResult(
            value: latest.map { KeyItem(kid: "\(baseURL)/keys/\($0.name)", attributes: $0.attributes, tags: $0.tags) }
        )
    }

    /// `GET /keys/{name}/versions`.
    public func listVersions(name: String, credential: String?) async throws -> KeyListResult {
        try authorize(credential)
        try Self.checkName(name)
        let versions = try await store.versions(name: name)
        guard !versions.isEmpty else {
            throw ServiceError(status: .notFound, code: "KeyNotFound", message: "no key \(name)")
        }
        return KeyListResult(
            value: versions.prefix(configuration.listLimit).map {
                KeyItem(kid: kid(name: $0.name, version: $0.version), attributes: $0.attributes, tags: $0.tags)
            }
        )
    }

    /// `POST /keys/{name}/rotate`: a new version of the same type, operations and release attributes (the
    /// administrator's: refused `KeyOwnedByImporter` under an owner's name).
    public func rotateKey(name: String, credential: String?) async throws -> KeyBundle {
        try await audited("rotate", key: name) {
            try authorize(credential)
            let latest = try await stored(name: name, version: nil)
            let request = BrokerCreateKeyRequest(
                name: name,
                version: Self.newVersion(),
                type: latest.key.type,
                keyOperations: latest.key.keyOperations,
                attributes: latest.key.attributes
            )
            let key = try await engineCall { try await engine.createKey(request) }
            let stored = try await insert(
                key,
                attributes: KeyAttributes(enabled: latest.attributes.enabled),
                tags: latest.tags,
                origin: .administrator
            )
            return (bundle(stored), stored.version, latest.key.type.rawValue)
        }
    }

    /// `DELETE /keys/{name}`: soft delete (every version), recoverable until purged.
    public func deleteKey(name: String, credential: String?) async throws -> DeletedKeyBundle {
        try await audited("delete", key: name) {
            try authorize(credential)
            try Self.checkName(name)
            guard try await store.setDeleted(name: name, at: Date()) else {
                throw ServiceError(status: .notFound, code: "KeyNotFound", message: "no key \(name)")
            }
            return (try await deletedKey(name: name, credential: credential), nil, "soft-deleted")
        }
    }

    /// `GET /deletedkeys/{name}`.
    public func deletedKey(name: String, credential: String?) async throws -> DeletedKeyBundle {
        try authorize(credential)
        try Self.checkName(name)
        guard let (stored, deleted) = try await store.deletedKey(name: name) else {
            throw ServiceError(status: .notFound, code: "KeyNotFound", message: "no deleted key \(name)")
        }
        let seconds = Int64(deleted.timeIntervalSince1970)
        return DeletedKeyBundle(
            bundle: bundle(stored),
            recoveryId: "\(baseURL)/deletedkeys/\(name)",
            deletedDate: seconds,
            scheduledPurgeDate: seconds + Int64(configuration.recoverableDays) * 86_400
        )
    }

    /// `DELETE /deletedkeys/{name}`: purge for good.
    public func purgeKey(name: String, credential: String?) async throws {
        try await audited("purge", key: name) {
            try authorize(credential)
            try Self.checkName(name)
            guard try await store.purge(name: name) else {
                throw ServiceError(status: .notFound, code: "KeyNotFound", message: "no deleted key \(name)")
            }
            return ((), nil, "purged")
        }
    }

    /// `POST /deletedkeys/{name}/recover`.
    public func recoverKey(name: String, credential: String?) async throws -> KeyBundle {
        try await audited("recover", key: name) {
            try authorize(credential)
            try Self.checkName(name)
            guard try await store.setDeleted(name: name, at: nil) else {
                throw ServiceError(status: .notFound, code: "KeyNotFound", message: "no deleted key \(name)")
            }
            return (bundle(try await stored(name: name, version: nil)), nil, "recovered")
        }
    }

    /// `PUT /keys/{name}/{version}/releasepolicy`: a new policy, unless the current one is immutable or the version is
    /// an owner's (`KeyOrigin.owner`: refused `KeyOwnedByImporter`, 409, whether or not the owner made its policy
    /// immutable). The broker can't tell the owner from its administrator, so a replaced policy could hand the owner's
    /// key to an enclave of the administrator's choosing; an owner who needs another policy imports the key again
    /// under a new name. The store refuses an owner's version too, atomically with the update.
    public func updatePolicy(
        name: String,
        version: String,
        policy: KeyReleasePolicy,
        credential: String?
    )
        async throws -> KeyBundle
    {
        try await audited("updatePolicy", key: name, version: version) {
            try authorize(credential)
            var stored = try await stored(name: name, version: version)
            guard stored.attributes.origin != .owner else { throw Self.ownersPolicy(name: name, version: version) }
            guard stored.key.attributes.exportable else {
                throw ServiceError.badRequest("BadParameter", "key \(name) is not exportable: it has no release policy")
            }
            guard !stored.key.attributes.immutable else {
                throw ServiceError(
                    status: .conflict,
                    code: "ReleasePolicyImmutable",
                    message: "the release policy of key \(name) version \(version) is immutable"
                )
            }
            let attributes = BrokerKeyAttributes(
                exportable: true,
                releasePolicy: try Self.policyBytes(policy),
                immutable: policy.immutable ?? false
            )
            let request = BrokerUpdatePolicyRequest(key: stored.key, attributes: attributes)
            stored.key = try await engineCall { try await engine.updatePolicy(request) }
            stored.attributes.updated = Int64(Date().timeIntervalSince1970)
            let replaced: Bool
            do {
                replaced = try await store.replaceVersion(stored)
            } catch KeyNameRefusal.ownedByImporter {
                throw Self.ownersPolicy(name: name, version: version)
            }
            guard replaced else {
                throw ServiceError(status: .notFound, code: "KeyNotFound", message: "no key \(name) version \(version)")
            }
            return (bundle(stored), nil, attributes.immutable ? "policy replaced (now immutable)" : "policy replaced")
        }
    }

    /// The refusal of a policy update on an owner's version.
    static func ownersPolicy(name: String, version: String) -> ServiceError {
        ServiceError(
            status: .conflict,
            code: "KeyOwnedByImporter",
            message: "key \(name) version \(version) was imported by its owner under a release policy: only the owner "
                + "sets it (the broker can't tell the owner from its administrator); import the key again under a new "
                + "name for another policy"
        )
    }

    /// `POST /keys/{name}/{version}/unwrapkey` (administrators): a data key unwrapped inside the enclave
    /// (`RSA-OAEP-256` with an RSA key, `A256KW` with an AES key).
    public func unwrapKey(
        name: String,
        version: String,
        parameters: KeyOperationParameters,
        credential: String?
    )
        async throws -> KeyOperationResult
    {
        try await audited("unwrap", key: name, version: version) {
            try authorize(credential)
            let stored = try await stored(name: name, version: version)
            let value = try Self.operationValue(parameters)
            let request = BrokerUnwrapRequest(key: stored.key, algorithm: parameters.alg, ciphertext: value)
            let result = try await engineCall { try await engine.unwrap(request) }
            return (
                KeyOperationResult(kid: kid(name: name, version: version), value: Base64URL.encode(result)), nil,
                parameters.alg
            )
        }
    }

    /// `POST /keys/{name}/{version}/wrapkey` (administrators): a data key wrapped inside the enclave (AES keys,
    /// whose wrap can't happen outside).
    public func wrapKey(
        name: String,
        version: String,
        parameters: KeyOperationParameters,
        credential: String?
    )
        async throws -> KeyOperationResult
    {
        try await audited("wrap", key: name, version: version) {
            try authorize(credential)
            let stored = try await stored(name: name, version: version)
            let value = try Self.operationValue(parameters)
            let request = BrokerWrapRequest(key: stored.key, algorithm: parameters.alg, plaintext: value)
            let result = try await engineCall { try await engine.wrap(request) }
            return (
                KeyOperationResult(kid: kid(name: name, version: version), value: Base64URL.encode(result)), nil,
                parameters.alg
            )
        }
    }

    static func operationValue(_ parameters: KeyOperationParameters) throws -> [UInt8] {
        guard ["RSA-OAEP-256", "A256KW", "ECDH-ES+A256KW"].contains(parameters.alg) else {
            throw ServiceError.badRequest(
                "BadParameter",
                "alg must be RSA-OAEP-256 (RSA keys), A256KW (AES keys) or ECDH-ES+A256KW (EC keys, unwrap)"
            )
        }
        guard parameters.value.utf8.count <= 16 << 10, let value = Base64URL.decode(parameters.value) else {
            throw ServiceError.badRequest("BadParameter", "value is not base64url or is larger than 12 KiB")
        }
        return value
    }
}
