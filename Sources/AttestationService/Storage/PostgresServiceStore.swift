public import Foundation
internal import Logging
internal import PostgresNIO

/// The shared store for several instances: one PostgreSQL database. Instances agree on one signing key (the first
/// inserted wins) and see each other's policy changes on their next request.
public final class PostgresServiceStore: ServiceStore {
    private let client: PostgresClient
    private let runner: Task<Void, Never>

    /// Connect to `url` (`postgres://user[:password]@host[:port]/database`).
    public static func connect(url: String) async throws -> PostgresServiceStore {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme),
            let host = components.host, let user = components.user
        else {
            throw ServiceError.badRequest(
                "InvalidDatabaseURL",
                "expected postgres://user[:password]@host[:port]/database"
            )
        }
        let database = components.path.isEmpty ? nil : String(components.path.dropFirst())
        var configuration = PostgresClient.Configuration(
            host: host,
            port: components.port ?? 5432,
            username: user,
            password: components.password,
            database: database,
            tls: .disable
        )
        configuration.options.maximumConnections = 8
        let client = PostgresClient(
            configuration: configuration,
            backgroundLogger: Logger(label: "enclavekit.postgres")
        )
        let store = PostgresServiceStore(client: client, runner: Task { await client.run() })
        try await store.migrate()
        return store
    }

    private init(client: PostgresClient, runner: Task<Void, Never>) {
        self.client = client
        self.runner = runner
    }

    public func migrate() async throws {
        // One migration at a time across instances.
        let logger = Logger(label: "enclavekit.postgres")
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(727)", logger: logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS signing_keys (id INTEGER PRIMARY KEY CHECK (id = 1), private_key TEXT NOT NULL, certificate TEXT NOT NULL)",
                logger: logger
            )
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS policies (type TEXT PRIMARY KEY, text TEXT NOT NULL, jws TEXT NOT NULL, hash TEXT NOT NULL, updated DOUBLE PRECISION NOT NULL)",
                logger: logger
            )
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS challenges (nonce TEXT PRIMARY KEY, expires DOUBLE PRECISION NOT NULL)",
                logger: logger
            )
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS audit (id BIGSERIAL PRIMARY KEY, time DOUBLE PRECISION NOT NULL, type TEXT NOT NULL, result TEXT NOT NULL, detail TEXT NOT NULL, policy_hash TEXT NOT NULL)",
                logger: logger
            )
        }
    }

    public func signingKey(orInsert candidate: StoredSigningKey) async throws -> StoredSigningKey {
        try await client.query(
            "INSERT INTO signing_keys (id, private_key, certificate) VALUES (1, \(candidate.privateKeyPEM), \(candidate.certificatePEM)) ON CONFLICT (id) DO NOTHING"
        )
        for try await (key, certificate) in try await client.query(
            "SELECT private_key, certificate FROM signing_keys WHERE id = 1"
        ).decode((String, String).self) {
            return StoredSigningKey(privateKeyPEM: key, certificatePEM: certificate)
        }
        throw ServiceError.internal("the signing key did not persist")
    }

    public func policy(type: String) async throws -> StoredPolicy? {
        for try await (text, jws, hash, updated) in try await client.query(
            "SELECT text, jws, hash, updated FROM policies WHERE type = \(type)"
        ).decode((String, String, String, Double).self) {
            return StoredPolicy(text: text, jws: jws, hash: hash, updated: Date(timeIntervalSince1970: updated))
        }
        return nil
    }

    public func setPolicy(_ policy: StoredPolicy?, type: String) async throws {
        guard let policy else {
            try await client.query("DELETE FROM policies WHERE type = \(type)")
            return
        }
        let updated = policy.updated.timeIntervalSince1970
        try await client.query(
            """
            INSERT INTO policies (type, text, jws, hash, updated) VALUES (\(type), \(policy.text), \(policy.jws), \(policy.hash), \(updated))
            ON CONFLICT (type) DO UPDATE SET text = EXCLUDED.text, jws = EXCLUDED.jws, hash = EXCLUDED.hash, updated = EXCLUDED.updated
            """
        )
    }

    public func insertChallenge(_ nonce: String, expires: Date) async throws {
        let seconds = expires.timeIntervalSince1970
        try await client.query("INSERT INTO challenges (nonce, expires) VALUES (\(nonce), \(seconds))")
    }

    public func consumeChallenge(_ nonce: String, at time: Date) async throws -> Bool {
        var expires: Double?
        for try await value in try await client.query(
            "DELETE FROM challenges WHERE nonce = \(nonce) RETURNING expires"
        ).decode(Double.self) {
            expires = value
        }
        let now = time.timeIntervalSince1970
        try await client.query("DELETE FROM challenges WHERE expires < \(now)")
        return expires.map { now < $0 } ?? false
    }

    public func appendAudit(_ record: AuditRecord) async throws {
        let time = record.time.timeIntervalSince1970
        try await client.query(
            "INSERT INTO audit (time, type, result, detail, policy_hash) VALUES (\(time), \(record.type), \(record.result), \(record.detail), \(record.policyHash))"
        )
    }

    public func auditRecords(limit: Int) async throws -> [AuditRecord] {
        var records: [AuditRecord] = []
        for try await (time, type, result, detail, hash) in try await client.query(
            "SELECT time, type, result, detail, policy_hash FROM audit ORDER BY id DESC LIMIT \(limit)"
        ).decode((Double, String, String, String, String).self) {
            records.append(
                AuditRecord(
                    time: Date(timeIntervalSince1970: time),
                    type: type,
                    result: result,
                    detail: detail,
                    policyHash: hash
                )
            )
        }
        return records
    }

    public func close() async throws { runner.cancel() }
}
