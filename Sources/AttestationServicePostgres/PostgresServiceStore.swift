public import AttestationService
internal import EnclaveCore
public import Foundation
internal import Logging
package import PostgresNIO

/// The shared store for several instances: one PostgreSQL database. Instances agree on one signing key (the first
/// inserted wins) and see each other's policy changes on their next request.
public final class PostgresServiceStore: ServiceStore {
    private let client: PostgresClient
    private let runner: Task<Void, Never>

    /// How the connection uses TLS, as libpq's `sslmode`: `disable`; `allow` and `prefer` use TLS when the server
    /// offers it; `require` refuses a server without TLS; `verify-ca` also checks the server's certificate against
    /// `sslrootcert=FILE` (required: not the system's roots); `verify-full` also checks its name (against
    /// `sslrootcert` or the system's roots).
    ///
    /// The default depends on the host: `prefer` (libpq's) toward this machine's loopback (`127.0.0.0/8` written
    /// `a.b.c.d`, `::1`, `localhost`), `verify-full` toward any other host, where the modes that don't verify the
    /// server are refused (`InsecureDatabaseConnection`) unless the caller passes `allowUnverifiedTLS`.
    public enum SSLMode: String, Sendable, CaseIterable {
        /// `disable`: no TLS. `allow` and `prefer`: TLS when the server offers it, without checking the server, so an
        /// attacker on the path can downgrade or impersonate (and ask for the password in clear text). `require`:
        /// TLS always, but the server is not checked. Toward a host other than loopback, all four need
        /// `allowUnverifiedTLS`.
        case disable, allow, prefer, require
        /// TLS, and the server's certificate must chain to `sslrootcert=FILE`, which this mode requires (as in
        /// libpq): its name is not checked, so the system's roots would let any publicly trusted certificate pass.
        case verifyCA = "verify-ca"
        /// TLS, the server's certificate must chain to `sslrootcert` (or the system's roots) and name the host (an IP
        /// address: an IP SAN): the only mode that stops an attacker on the path, and the default toward any host
        /// that is not loopback.
        case verifyFull = "verify-full"
    }

    /// Connect to `url` (`postgres://user[:password]@host[:port]/database[?sslmode=…&sslrootcert=FILE|system]`);
    /// `password`, when given, takes precedence over one in the URL. Fails (rather than waiting) when the server
    /// cannot be reached, refuses TLS that `sslmode` requires, presents a certificate that does not verify, or
    /// refuses the credentials.
    ///
    /// - Parameters:
    ///   - url: The database; without `sslmode`, `verify-full` unless the host is this machine's loopback.
    ///   - password: The password, taken over one in the URL.
    ///   - allowUnverifiedTLS: Accept `sslmode` `disable`, `allow`, `prefer` or `require` toward a host that is not
    ///     loopback. Anyone on the path can then pose as the database (which holds the signing key) and, below
    ///     `require`, read the password: only for a network you trust as much as this machine.
    /// - Throws: `ServiceError` `InvalidDatabaseURL`, `InsecureDatabaseConnection` (before any connection),
    ///   `DatabaseTLSUnavailable` (the server refused TLS; nothing else was sent) or `DatabaseUnavailable`.
    public static func connect(
        url: String,
        password: String? = nil,
        allowUnverifiedTLS: Bool = false
    ) async throws -> PostgresServiceStore {
        let client = try await makeClient(url: url, password: password, allowUnverifiedTLS: allowUnverifiedTLS)
        let store = PostgresServiceStore(client: client, runner: Task { await client.run() })
        try await store.migrate()
        return store
    }

    /// A pooled client for `url` (not yet running: the caller runs it), after one probe connection, so that a
    /// refusal (no TLS where `sslmode` requires it, bad password, nobody listening) is an error rather than a wait.
    /// Shared with the key broker's and the clean room's PostgreSQL stores; `url` and `allowUnverifiedTLS` as in
    /// ``connect(url:password:allowUnverifiedTLS:)`` (``Endpoint`` holds the rule).
    package static func makeClient(
        url: String,
        password: String?,
        allowUnverifiedTLS: Bool
    ) async throws -> PostgresClient {
        let endpoint = try Endpoint(url: url, password: password, allowUnverifiedTLS: allowUnverifiedTLS)
        let logger = Logger(label: "enclavekit.postgres")
        // One connection first, so that a refusal (no TLS where required, bad password) is an error, not a wait.
        let probe: PostgresConnection
        do {
            probe = try await PostgresConnection.connect(
                configuration: PostgresConnection.Configuration(
                    host: endpoint.host,
                    port: endpoint.port,
                    username: endpoint.user,
                    password: endpoint.password,
                    database: endpoint.database,
                    tls: try endpoint.connectionTLS()
                ),
                id: 0,
                logger: logger
            )
        } catch let error as PSQLError where error.code == .sslUnsupported {
            throw ServiceError.badRequest(
                "DatabaseTLSUnavailable",
                "the PostgreSQL server at \(endpoint.host):\(endpoint.port) does not offer TLS, which sslmode="
                    + "\(endpoint.sslMode.rawValue) requires"
                    + (endpoint.isLoopback ? "" : " (the default toward a host other than loopback)")
            )
        } catch let error as ServiceError {
            throw error
        } catch {
            throw ServiceError.badRequest(
                "DatabaseUnavailable",
                "cannot connect to PostgreSQL at \(endpoint.host):\(endpoint.port): \(String(reflecting: error))"
            )
        }
        try? await probe.close()
        var configuration = PostgresClient.Configuration(
            host: endpoint.host,
            port: endpoint.port,
            username: endpoint.user,
            password: endpoint.password,
            database: endpoint.database,
            tls: try endpoint.clientTLS()
        )
        configuration.options.maximumConnections = 8
        return PostgresClient(configuration: configuration, backgroundLogger: logger)
    }

    private init(client: PostgresClient, runner: Task<Void, Never>) {
        self.client = client
        self.runner = runner
    }

    public func migrate() async throws {
        // One migration at a time across instances.
        let logger = Logger(label: "enclavekit.postgres")
        try await client.withTransaction(logger: logger) { connection in
            // READ COMMITTED whatever the server's default: under REPEATABLE READ the lock's SELECT would take the
            // snapshot before the wait, and what the previous holder created would stay unseen.
            try await connection.query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", logger: logger)
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
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS policy_versions (type TEXT PRIMARY KEY, version BIGINT NOT NULL)",
                logger: logger
            )
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS admin_credential (id INTEGER PRIMARY KEY CHECK (id = 1), digest TEXT NOT NULL)",
                logger: logger
            )
            try await connection.query(
                "CREATE INDEX IF NOT EXISTS challenges_expires ON challenges (expires)",
                logger: logger
            )
            try await connection.query("CREATE INDEX IF NOT EXISTS audit_time ON audit (time)", logger: logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS challenge_key (id INTEGER PRIMARY KEY CHECK (id = 1), key TEXT NOT NULL)",
                logger: logger
            )
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS consumed_challenges (nonce TEXT PRIMARY KEY, expires DOUBLE PRECISION NOT NULL)",
                logger: logger
            )
            try await connection.query(
                "CREATE INDEX IF NOT EXISTS consumed_challenges_expires ON consumed_challenges (expires)",
                logger: logger
            )
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS collateral_cache (key TEXT PRIMARY KEY, body TEXT NOT NULL, issuer_chain TEXT NOT NULL, issued DOUBLE PRECISION NOT NULL, next_update DOUBLE PRECISION NOT NULL, fetched DOUBLE PRECISION NOT NULL)",
                logger: logger
            )
            // Added with RS256 tokens and policy management certificates (IF NOT EXISTS: an existing database gains
            // them on the next start).
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS token_signing_keys (kind TEXT PRIMARY KEY, private_key TEXT NOT NULL, certificate TEXT NOT NULL)",
                logger: logger
            )
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS policy_signers (id TEXT PRIMARY KEY, certificate TEXT NOT NULL, present BOOLEAN NOT NULL, added DOUBLE PRECISION NOT NULL, updated DOUBLE PRECISION NOT NULL)",
                logger: logger
            )
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS policy_requests (digest TEXT PRIMARY KEY, time DOUBLE PRECISION NOT NULL)",
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

    /// Run `sql` as is (tests: make a scratch database, set its defaults).
    package func execute(_ sql: String) async throws {
        try await client.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "enclavekit.postgres"))
    }
}

extension PostgresServiceStore {
    public func cachedCollateral(key: String) async throws -> CachedCollateral? {
        for try await (text, chain, issued, nextUpdate, fetched) in try await client.query(
            "SELECT body, issuer_chain, issued, next_update, fetched FROM collateral_cache WHERE key = \(key)"
        ).decode((String, String, Double, Double, Double).self) {
            guard let body = Data(base64Encoded: text) else { return nil }
            return CachedCollateral(
                body: [UInt8](body),
                issuerChain: chain,
                issued: Date(timeIntervalSince1970: issued),
                nextUpdate: Date(timeIntervalSince1970: nextUpdate),
                fetched: Date(timeIntervalSince1970: fetched)
            )
        }
        return nil
    }

    public func cacheCollateral(_ piece: CachedCollateral, key: String) async throws {
        let body = Data(piece.body).base64EncodedString()
        let issued = piece.issued.timeIntervalSince1970
        let nextUpdate = piece.nextUpdate.timeIntervalSince1970
        let fetched = piece.fetched.timeIntervalSince1970
        try await client.query(
            """
            INSERT INTO collateral_cache (key, body, issuer_chain, issued, next_update, fetched) VALUES (\(key), \(body), \(piece.issuerChain), \(issued), \(nextUpdate), \(fetched))
            ON CONFLICT (key) DO UPDATE SET body = EXCLUDED.body, issuer_chain = EXCLUDED.issuer_chain, issued = EXCLUDED.issued, next_update = EXCLUDED.next_update, fetched = EXCLUDED.fetched
            """
        )
    }
}

extension PostgresServiceStore {
    public func advancePolicyVersion(type: String, to version: Int64) async throws -> Bool {
        var advanced = false
        for try await value in try await client.query(
            """
            INSERT INTO policy_versions (type, version) VALUES (\(type), \(version))
            ON CONFLICT (type) DO UPDATE SET version = EXCLUDED.version WHERE EXCLUDED.version > policy_versions.version
            RETURNING version
            """
        ).decode(Int64.self) {
            advanced = value == version
        }
        return advanced
    }

    public func insertChallenge(_ nonce: String, expires: Date, at time: Date, limit: Int) async throws -> Bool {
        let now = time.timeIntervalSince1970
        try await client.query("DELETE FROM challenges WHERE expires <= \(now)")
        let seconds = expires.timeIntervalSince1970
        var inserted = false
        for try await _ in try await client.query(
            "INSERT INTO challenges (nonce, expires) SELECT \(nonce), \(seconds) WHERE (SELECT COUNT(*) FROM challenges) < \(limit) RETURNING nonce"
        ).decode(String.self) {
            inserted = true
        }
        return inserted
    }

    public func pruneAudit(before time: Date, keepingAtMost limit: Int) async throws {
        let seconds = time.timeIntervalSince1970
        try await client.query("DELETE FROM audit WHERE time < \(seconds)")
        let keep = max(0, limit)
        try await client.query("DELETE FROM audit WHERE id <= (SELECT MAX(id) FROM audit) - \(keep)")
    }

    public func adminTokenDigest(orInsert candidate: [UInt8], replacing: Bool) async throws -> [UInt8] {
        let text = Hex.encode(candidate)
        if replacing {
            try await client.query(
                "INSERT INTO admin_credential (id, digest) VALUES (1, \(text)) ON CONFLICT (id) DO UPDATE SET digest = EXCLUDED.digest"
            )
        } else {
            try await client.query(
                "INSERT INTO admin_credential (id, digest) VALUES (1, \(text)) ON CONFLICT (id) DO NOTHING"
            )
        }
        for try await stored in try await client.query("SELECT digest FROM admin_credential WHERE id = 1").decode(
            String.self
        ) {
            if let digest = Hex.decode(stored) { return digest }
        }
        throw ServiceError.internal("the administrator credential did not persist")
    }
}

extension PostgresServiceStore {
    public func storedAdminTokenDigest() async throws -> [UInt8]? {
        for try await stored in try await client.query("SELECT digest FROM admin_credential WHERE id = 1").decode(
            String.self
        ) {
            guard let digest = Hex.decode(stored) else {
                throw ServiceError.internal("the stored administrator credential is not hex")
            }
            return digest
        }
        return nil
    }

    public func challengeKey(orInsert candidate: [UInt8]) async throws -> [UInt8] {
        let text = Hex.encode(candidate)
        try await client.query("INSERT INTO challenge_key (id, key) VALUES (1, \(text)) ON CONFLICT (id) DO NOTHING")
        for try await stored in try await client.query("SELECT key FROM challenge_key WHERE id = 1").decode(
            String.self
        ) {
            if let key = Hex.decode(stored), key.count == 32 { return key }
        }
        throw ServiceError.internal("the challenge key did not persist")
    }

    public func markChallengeConsumed(_ nonce: String, expires: Date, at time: Date) async throws -> Bool {
        let now = time.timeIntervalSince1970
        try await client.query("DELETE FROM consumed_challenges WHERE expires < \(now)")
        let seconds = expires.timeIntervalSince1970
        var inserted = false
        for try await _ in try await client.query(
            "INSERT INTO consumed_challenges (nonce, expires) VALUES (\(nonce), \(seconds)) ON CONFLICT (nonce) DO NOTHING RETURNING nonce"
        ).decode(String.self) {
            inserted = true
        }
        return inserted
    }
}

extension PostgresServiceStore {
    public func signingKey(kind: String, orInsert candidate: StoredSigningKey?) async throws -> StoredSigningKey? {
        if kind == "ec" {
            if let candidate { return try await signingKey(orInsert: candidate) }
            for try await (key, certificate) in try await client.query(
                "SELECT private_key, certificate FROM signing_keys WHERE id = 1"
            ).decode((String, String).self) {
                return StoredSigningKey(privateKeyPEM: key, certificatePEM: certificate)
            }
            return nil
        }
        if let candidate {
            try await client.query(
                "INSERT INTO token_signing_keys (kind, private_key, certificate) VALUES (\(kind), \(candidate.privateKeyPEM), \(candidate.certificatePEM)) ON CONFLICT (kind) DO NOTHING"
            )
        }
        for try await (key, certificate) in try await client.query(
            "SELECT private_key, certificate FROM token_signing_keys WHERE kind = \(kind)"
        ).decode((String, String).self) {
            return StoredSigningKey(privateKeyPEM: key, certificatePEM: certificate)
        }
        return nil
    }

    public func policySigners() async throws -> [[UInt8]] {
        var signers: [[UInt8]] = []
        for try await text in try await client.query(
            "SELECT certificate FROM policy_signers WHERE present ORDER BY added, id"
        ).decode(String.self) {
            guard let der = Data(base64Encoded: text) else {
                throw ServiceError.internal("a stored policy signer is not base64")
            }
            signers.append(Array(der))
        }
        return signers
    }

    public func seedPolicySigners(_ certificates: [[UInt8]], at time: Date) async throws {
        let seconds = time.timeIntervalSince1970
        for certificate in certificates {
            let id = Self.policySignerKey(certificate)
            let text = Data(certificate).base64EncodedString()
            try await client.query(
                "INSERT INTO policy_signers (id, certificate, present, added, updated) VALUES (\(id), \(text), TRUE, \(seconds), \(seconds)) ON CONFLICT (id) DO NOTHING"
            )
        }
    }

    public func addPolicySigner(_ certificate: [UInt8], at time: Date) async throws -> Bool {
        let id = Self.policySignerKey(certificate)
        let text = Data(certificate).base64EncodedString()
        let seconds = time.timeIntervalSince1970
        var added = false
        for try await _ in try await client.query(
            """
            INSERT INTO policy_signers (id, certificate, present, added, updated) VALUES (\(id), \(text), TRUE, \(seconds), \(seconds))
            ON CONFLICT (id) DO UPDATE SET present = TRUE, updated = EXCLUDED.updated WHERE NOT policy_signers.present
            RETURNING id
            """
        ).decode(String.self) {
            added = true
        }
        return added
    }

    public func removePolicySigner(_ certificate: [UInt8], at time: Date) async throws -> PolicySignerRemoval {
        let id = Self.policySignerKey(certificate)
        let seconds = time.timeIntervalSince1970
        let logger = Logger(label: "enclavekit.postgres")
        // A transaction under an advisory lock: two instances removing the last two signers at once would otherwise
        // both count two (READ COMMITTED) and leave none. READ COMMITTED explicitly, whatever the server's
        // default_transaction_isolation: under REPEATABLE READ the lock's SELECT would take the snapshot before the
        // wait, and both would still count two.
        return try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", logger: logger)
            try await connection.query("SELECT pg_advisory_xact_lock(728)", logger: logger)
            var present = false
            var count = 0
            for try await rowID in try await connection.query(
                "SELECT id FROM policy_signers WHERE present",
                logger: logger
            ).decode(String.self) {
                count += 1
                if rowID == id { present = true }
            }
            guard present else { return .absent }
            guard count > 1 else { return .last }
            try await connection.query(
                "UPDATE policy_signers SET present = FALSE, updated = \(seconds) WHERE id = \(id)",
                logger: logger
            )
            return .removed
        }
    }

    public func markPolicyRequestUsed(digest: String, at time: Date) async throws -> Bool {
        let seconds = time.timeIntervalSince1970
        var inserted = false
        for try await _ in try await client.query(
            "INSERT INTO policy_requests (digest, time) VALUES (\(digest), \(seconds)) ON CONFLICT (digest) DO NOTHING RETURNING digest"
        ).decode(String.self) {
            inserted = true
        }
        return inserted
    }

    public func policyRequestUsed(digest: String) async throws -> Bool {
        var found = false
        for try await _ in try await client.query("SELECT digest FROM policy_requests WHERE digest = \(digest)")
            .decode(String.self)
        {
            found = true
        }
        return found
    }
}
