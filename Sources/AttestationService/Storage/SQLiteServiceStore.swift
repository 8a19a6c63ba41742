internal import EnclaveCore
public import Foundation
internal import SQLiteNIO

/// The embedded store: one SQLite file in the data directory (0600, directory 0700).
public final class SQLiteServiceStore: ServiceStore {
    private let connection: SQLiteConnection

    /// Open (creating) `directory/attestation.sqlite`. The directory is created 0700; an existing one owned by
    /// another user or writable by others is refused (`EnclaveError.Code.invalidConfiguration`, naming the path
    /// and mode). The database file is created 0600 before SQLite writes its first byte.
    public static func open(directory: String) async throws -> SQLiteServiceStore {
        try SecretFile.prepareDirectory(directory, what: "data directory")
        let path = directory + "/attestation.sqlite"
        try SecretFile.createEmpty(path)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        let connection = try await SQLiteConnection.open(storage: .file(path: path))
        _ = try await connection.query("PRAGMA journal_mode=WAL")
        _ = try await connection.query("PRAGMA busy_timeout=5000")
        let store = SQLiteServiceStore(connection: connection)
        try await store.migrate()
        return store
    }

    private init(connection: SQLiteConnection) { self.connection = connection }

    public func migrate() async throws {
        for statement in [
            "CREATE TABLE IF NOT EXISTS signing_keys (id INTEGER PRIMARY KEY CHECK (id = 1), private_key TEXT NOT NULL, certificate TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS policies (type TEXT PRIMARY KEY, text TEXT NOT NULL, jws TEXT NOT NULL, hash TEXT NOT NULL, updated REAL NOT NULL)",
            "CREATE TABLE IF NOT EXISTS challenges (nonce TEXT PRIMARY KEY, expires REAL NOT NULL)",
            "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, type TEXT NOT NULL, result TEXT NOT NULL, detail TEXT NOT NULL, policy_hash TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS policy_versions (type TEXT PRIMARY KEY, version INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS admin_credential (id INTEGER PRIMARY KEY CHECK (id = 1), digest TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS challenges_expires ON challenges (expires)",
            "CREATE INDEX IF NOT EXISTS audit_time ON audit (time)",
            "CREATE TABLE IF NOT EXISTS collateral_cache (key TEXT PRIMARY KEY, body TEXT NOT NULL, issuer_chain TEXT NOT NULL, issued REAL NOT NULL, next_update REAL NOT NULL, fetched REAL NOT NULL)",
            "CREATE TABLE IF NOT EXISTS challenge_key (id INTEGER PRIMARY KEY CHECK (id = 1), key TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS consumed_challenges (nonce TEXT PRIMARY KEY, expires REAL NOT NULL)",
            "CREATE INDEX IF NOT EXISTS consumed_challenges_expires ON consumed_challenges (expires)",
            // Added with RS256 tokens and policy management certificates (CREATE … IF NOT EXISTS: an existing
            // data directory gains them on its next start).
            "CREATE TABLE IF NOT EXISTS token_signing_keys (kind TEXT PRIMARY KEY, private_key TEXT NOT NULL, certificate TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS policy_signers (id TEXT PRIMARY KEY, certificate TEXT NOT NULL, present INTEGER NOT NULL, added REAL NOT NULL, updated REAL NOT NULL)",
            "CREATE TABLE IF NOT EXISTS policy_requests (digest TEXT PRIMARY KEY, time REAL NOT NULL)",
        ] {
            _ = try await connection.query(statement)
        }
    }

    public func signingKey(orInsert candidate: StoredSigningKey) async throws -> StoredSigningKey {
        _ = try await connection.query(
            "INSERT OR IGNORE INTO signing_keys (id, private_key, certificate) VALUES (1, ?, ?)",
            [.text(candidate.privateKeyPEM), .text(candidate.certificatePEM)]
        )
        let rows = try await connection.query("SELECT private_key, certificate FROM signing_keys WHERE id = 1")
        guard let row = rows.first, let key = row.column("private_key")?.string,
            let certificate = row.column("certificate")?.string
        else { throw ServiceError.internal("the signing key did not persist") }
        return StoredSigningKey(privateKeyPEM: key, certificatePEM: certificate)
    }

    public func policy(type: String) async throws -> StoredPolicy? {
        let rows = try await connection.query(
            "SELECT text, jws, hash, updated FROM policies WHERE type = ?",
            [.text(type)]
        )
        guard let row = rows.first, let text = row.column("text")?.string, let jws = row.column("jws")?.string,
            let hash = row.column("hash")?.string, let updated = row.column("updated")?.double
        else { return nil }
        return StoredPolicy(text: text, jws: jws, hash: hash, updated: Date(timeIntervalSince1970: updated))
    }

    public func setPolicy(_ policy: StoredPolicy?, type: String) async throws {
        guard let policy else {
            _ = try await connection.query("DELETE FROM policies WHERE type = ?", [.text(type)])
            return
        }
        _ = try await connection.query(
            "INSERT OR REPLACE INTO policies (type, text, jws, hash, updated) VALUES (?, ?, ?, ?, ?)",
            [
                .text(type), .text(policy.text), .text(policy.jws), .text(policy.hash),
                .float(policy.updated.timeIntervalSince1970),
            ]
        )
    }

    public func insertChallenge(_ nonce: String, expires: Date) async throws {
        _ = try await connection.query(
            "INSERT INTO challenges (nonce, expires) VALUES (?, ?)",
            [.text(nonce), .float(expires.timeIntervalSince1970)]
        )
    }

    public func consumeChallenge(_ nonce: String, at time: Date) async throws -> Bool {
        let rows = try await connection.query(
            "DELETE FROM challenges WHERE nonce = ? RETURNING expires",
            [.text(nonce)]
        )
        _ = try await connection.query("DELETE FROM challenges WHERE expires < ?", [.float(time.timeIntervalSince1970)])
        guard let expires = rows.first?.column("expires")?.double else { return false }
        return time.timeIntervalSince1970 < expires
    }

    public func appendAudit(_ record: AuditRecord) async throws {
        _ = try await connection.query(
            "INSERT INTO audit (time, type, result, detail, policy_hash) VALUES (?, ?, ?, ?, ?)",
            [
                .float(record.time.timeIntervalSince1970), .text(record.type), .text(record.result),
                .text(record.detail), .text(record.policyHash),
            ]
        )
    }

    public func auditRecords(limit: Int) async throws -> [AuditRecord] {
        let rows = try await connection.query(
            "SELECT time, type, result, detail, policy_hash FROM audit ORDER BY id DESC LIMIT ?",
            [.integer(limit)]
        )
        return rows.compactMap { row in
            guard let time = row.column("time")?.double, let type = row.column("type")?.string,
                let result = row.column("result")?.string, let detail = row.column("detail")?.string,
                let hash = row.column("policy_hash")?.string
            else { return nil }
            return AuditRecord(
                time: Date(timeIntervalSince1970: time),
                type: type,
                result: result,
                detail: detail,
                policyHash: hash
            )
        }
    }

    public func close() async throws { try await connection.close() }
}

extension SQLiteServiceStore {
    public func cachedCollateral(key: String) async throws -> CachedCollateral? {
        let rows = try await connection.query(
            "SELECT body, issuer_chain, issued, next_update, fetched FROM collateral_cache WHERE key = ?",
            [.text(key)]
        )
        guard let row = rows.first, let text = row.column("body")?.string,
            let body = Data(base64Encoded: text), let chain = row.column("issuer_chain")?.string,
            let issued = row.column("issued")?.double, let nextUpdate = row.column("next_update")?.double,
            let fetched = row.column("fetched")?.double
        else { return nil }
        return CachedCollateral(
            body: [UInt8](body),
            issuerChain: chain,
            issued: Date(timeIntervalSince1970: issued),
            nextUpdate: Date(timeIntervalSince1970: nextUpdate),
            fetched: Date(timeIntervalSince1970: fetched)
        )
    }

    public func cacheCollateral(_ piece: CachedCollateral, key: String) async throws {
        _ = try await connection.query(
            "INSERT OR REPLACE INTO collateral_cache (key, body, issuer_chain, issued, next_update, fetched) VALUES (?, ?, ?, ?, ?, ?)",
            [
                .text(key), .text(Data(piece.body).base64EncodedString()), .text(piece.issuerChain),
                .float(piece.issued.timeIntervalSince1970), .float(piece.nextUpdate.timeIntervalSince1970),
                .float(piece.fetched.timeIntervalSince1970),
            ]
        )
    }
}

extension SQLiteServiceStore {
    public func advancePolicyVersion(type: String, to version: Int64) async throws -> Bool {
        let rows = try await connection.query(
            """
            INSERT INTO policy_versions (type, version) VALUES (?, ?)
            ON CONFLICT (type) DO UPDATE SET version = excluded.version WHERE excluded.version > policy_versions.version
            RETURNING version
            """,
            [.text(type), .integer(Int(version))]
        )
        return rows.first?.column("version")?.integer == Int(version)
    }

    public func insertChallenge(_ nonce: String, expires: Date, at time: Date, limit: Int) async throws -> Bool {
        _ = try await connection.query(
            "DELETE FROM challenges WHERE expires <= ?",
            [.float(time.timeIntervalSince1970)]
        )
        let rows = try await connection.query(
            "INSERT INTO challenges (nonce, expires) SELECT ?, ? WHERE (SELECT COUNT(*) FROM challenges) < ? RETURNING nonce",
            [.text(nonce), .float(expires.timeIntervalSince1970), .integer(limit)]
        )
        return !rows.isEmpty
    }

    public func pruneAudit(before time: Date, keepingAtMost limit: Int) async throws {
        _ = try await connection.query("DELETE FROM audit WHERE time < ?", [.float(time.timeIntervalSince1970)])
        _ = try await connection.query(
            "DELETE FROM audit WHERE id <= (SELECT MAX(id) FROM audit) - ?",
            [.integer(max(0, limit))]
        )
    }

    public func adminTokenDigest(orInsert candidate: [UInt8], replacing: Bool) async throws -> [UInt8] {
        _ = try await connection.query(
            replacing
                ? "INSERT OR REPLACE INTO admin_credential (id, digest) VALUES (1, ?)"
                : "INSERT OR IGNORE INTO admin_credential (id, digest) VALUES (1, ?)",
            [.text(Hex.encode(candidate))]
        )
        let rows = try await connection.query("SELECT digest FROM admin_credential WHERE id = 1")
        guard let text = rows.first?.column("digest")?.string, let digest = Hex.decode(text) else {
            throw ServiceError.internal("the administrator credential did not persist")
        }
        return digest
    }
}

extension SQLiteServiceStore {
    public func storedAdminTokenDigest() async throws -> [UInt8]? {
        let rows = try await connection.query("SELECT digest FROM admin_credential WHERE id = 1")
        guard let text = rows.first?.column("digest")?.string else { return nil }
        guard let digest = Hex.decode(text) else {
            throw ServiceError.internal("the stored administrator credential is not hex")
        }
        return digest
    }

    public func challengeKey(orInsert candidate: [UInt8]) async throws -> [UInt8] {
        _ = try await connection.query(
            "INSERT OR IGNORE INTO challenge_key (id, key) VALUES (1, ?)",
            [.text(Hex.encode(candidate))]
        )
        let rows = try await connection.query("SELECT key FROM challenge_key WHERE id = 1")
        guard let text = rows.first?.column("key")?.string, let key = Hex.decode(text), key.count == 32 else {
            throw ServiceError.internal("the challenge key did not persist")
        }
        return key
    }

    public func markChallengeConsumed(_ nonce: String, expires: Date, at time: Date) async throws -> Bool {
        _ = try await connection.query(
            "DELETE FROM consumed_challenges WHERE expires < ?",
            [.float(time.timeIntervalSince1970)]
        )
        let rows = try await connection.query(
            "INSERT INTO consumed_challenges (nonce, expires) VALUES (?, ?) ON CONFLICT (nonce) DO NOTHING RETURNING nonce",
            [.text(nonce), .float(expires.timeIntervalSince1970)]
        )
        return !rows.isEmpty
    }
}

extension SQLiteServiceStore {
    public func signingKey(kind: String, orInsert candidate: StoredSigningKey?) async throws -> StoredSigningKey? {
        if kind == "ec" {
            if let candidate { return try await signingKey(orInsert: candidate) }
            let rows = try await connection.query("SELECT private_key, certificate FROM signing_keys WHERE id = 1")
            guard let row = rows.first, let key = row.column("private_key")?.string,
                let certificate = row.column("certificate")?.string
            else { return nil }
            return StoredSigningKey(privateKeyPEM: key, certificatePEM: certificate)
        }
        if let candidate {
            _ = try await connection.query(
                "INSERT OR IGNORE INTO token_signing_keys (kind, private_key, certificate) VALUES (?, ?, ?)",
                [.text(kind), .text(candidate.privateKeyPEM), .text(candidate.certificatePEM)]
            )
        }
        let rows = try await connection.query(
            "SELECT private_key, certificate FROM token_signing_keys WHERE kind = ?",
            [.text(kind)]
        )
        guard let row = rows.first, let key = row.column("private_key")?.string,
            let certificate = row.column("certificate")?.string
        else { return nil }
        return StoredSigningKey(privateKeyPEM: key, certificatePEM: certificate)
    }

    public func policySigners() async throws -> [[UInt8]] {
        let rows = try await connection.query(
            "SELECT certificate FROM policy_signers WHERE present = 1 ORDER BY added, id"
        )
        return try rows.map { row in
            guard let text = row.column("certificate")?.string, let der = Data(base64Encoded: text) else {
                throw ServiceError.internal("a stored policy signer is not base64")
            }
            return Array(der)
        }
    }

    public func seedPolicySigners(_ certificates: [[UInt8]], at time: Date) async throws {
        for certificate in certificates {
            _ = try await connection.query(
                "INSERT OR IGNORE INTO policy_signers (id, certificate, present, added, updated) VALUES (?, ?, 1, ?, ?)",
                [
                    .text(Self.policySignerKey(certificate)), .text(Data(certificate).base64EncodedString()),
                    .float(time.timeIntervalSince1970), .float(time.timeIntervalSince1970),
                ]
            )
        }
    }

    public func addPolicySigner(_ certificate: [UInt8], at time: Date) async throws -> Bool {
        let rows = try await connection.query(
            """
            INSERT INTO policy_signers (id, certificate, present, added, updated) VALUES (?, ?, 1, ?, ?)
            ON CONFLICT (id) DO UPDATE SET present = 1, updated = excluded.updated WHERE policy_signers.present = 0
            RETURNING id
            """,
            [
                .text(Self.policySignerKey(certificate)), .text(Data(certificate).base64EncodedString()),
                .float(time.timeIntervalSince1970), .float(time.timeIntervalSince1970),
            ]
        )
        return !rows.isEmpty
    }

    public func removePolicySigner(_ certificate: [UInt8], at time: Date) async throws -> PolicySignerRemoval {
        let id = Self.policySignerKey(certificate)
        // One statement: the count and the update cannot be separated by another writer.
        let rows = try await connection.query(
            """
            UPDATE policy_signers SET present = 0, updated = ?
            WHERE id = ? AND present = 1 AND (SELECT COUNT(*) FROM policy_signers WHERE present = 1) > 1
            RETURNING id
            """,
            [.float(time.timeIntervalSince1970), .text(id)]
        )
        if !rows.isEmpty { return .removed }
        let present = try await connection.query(
            "SELECT id FROM policy_signers WHERE id = ? AND present = 1",
            [.text(id)]
        )
        return present.isEmpty ? .absent : .last
    }

    public func markPolicyRequestUsed(digest: String, at time: Date) async throws -> Bool {
        let rows = try await connection.query(
            "INSERT INTO policy_requests (digest, time) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING RETURNING digest",
            [.text(digest), .float(time.timeIntervalSince1970)]
        )
        return !rows.isEmpty
    }

    public func policyRequestUsed(digest: String) async throws -> Bool {
        let rows = try await connection.query("SELECT digest FROM policy_requests WHERE digest = ?", [.text(digest)])
        return !rows.isEmpty
    }
}
