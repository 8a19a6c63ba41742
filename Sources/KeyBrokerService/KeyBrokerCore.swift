public import AttestationAPI
public import AttestationService
internal import EnclaveCore
internal import Foundation
internal import Hummingbird
internal import KeyBroker
internal import Synchronization

/// The key broker's host side: validates requests, keeps wrapped keys and the audit log in a ``KeyBrokerStore``, and
/// has the broker enclave (a ``BrokerEngine``) do every key operation. Errors are AttestationService's
/// `ServiceError` (Key Vault's `{"error":{"code","message"}}` body). Every management call, every granted release and
/// every refusal of a verified token is audited one record each; anonymous refusals (no verified token) are counted
/// per minute, key and code in a bounded table (`KeyBrokerRefusalCount`).
public final class KeyBrokerCore: Sendable {
    /// The service's configuration.
    public struct Configuration: Sendable {
        /// The administrator's credential (management routes); nil refuses every management call.
        public var adminCredential: AdminCredential?
        /// Days a deleted key stays recoverable before it may be purged automatically (Key Vault's default: 90).
        public var recoverableDays: Int
        /// The most keys and versions a list answers.
        public var listLimit: Int
        /// How long anonymous refusal counts (`KeyBrokerRefusalCount`) are kept, in seconds; 90 days by default.
        public var refusalRetention: Double
        /// The most anonymous refusal counts kept (the newest); 1,000,000 rows (about 100 MB) by default.
        public var maxRefusalRecords: Int

        /// A configuration with the members given.
        public init(
            adminCredential: AdminCredential?,
            recoverableDays: Int = 90,
            listLimit: Int = 1000,
            refusalRetention: Double = 90 * 86400,
            maxRefusalRecords: Int = 1_000_000
        ) {
            self.adminCredential = adminCredential
            self.recoverableDays = recoverableDays
            self.listLimit = listLimit
            self.refusalRetention = refusalRetention
            self.maxRefusalRecords = maxRefusalRecords
        }
    }

    /// The store.
    public let store: any KeyBrokerStore
    /// The broker enclave.
    public let engine: any BrokerEngine
    /// The configuration.
    public let configuration: Configuration
    private let base: Mutex<String>
    /// The audit log's group commit (every record still stored before its request answers).
    let auditLog: AuditBatcher
    /// Anonymous release refusals, counted in a bounded table (not in the audit log).
    let refusals: RefusalCounter

    /// A broker on `store` and `engine`, answering identifiers under `baseURL` (`https://host:port`; settable once
    /// the port is known with ``setBaseURL(_:)``). Records the engine's master key identifier in the store, and
    /// refuses to start when the store was filled under another master key (a replica must join instead).
    public init(
        store: any KeyBrokerStore,
        engine: any BrokerEngine,
        configuration: Configuration,
        baseURL: String = "https://localhost"
    ) async throws {
        self.store = store
        self.engine = engine
        self.configuration = configuration
        self.base = Mutex(baseURL)
        self.auditLog = AuditBatcher(store: store)
        self.refusals = RefusalCounter(
            store: store,
            retention: configuration.refusalRetention,
            maximum: configuration.maxRefusalRecords
        )
        let identity = try await engine.identity()
        let recorded = try await store.keyringID(orInsert: identity.keyringID)
        guard recorded == identity.keyringID else {
            throw ServiceError(
                status: .internalServerError,
                code: "KeyringMismatch",
                message: "the database holds keys wrapped under keyring \(recorded), this broker enclave has "
                    + "\(identity.keyringID): join a running instance (enclave serve keybroker --join URL) "
                    + "instead of starting with a new keyring"
            )
        }
    }

    /// The address key identifiers are made under.
    public var baseURL: String { base.withLock { $0 } }

    /// Set the address key identifiers are made under (once the server's port is known).
    public func setBaseURL(_ url: String) { base.withLock { $0 = url } }

    /// `https://{broker}/keys/{name}/{version}`.
    func kid(name: String, version: String) -> String { "\(baseURL)/keys/\(name)/\(version)" }

    /// Refuses a request without the administrator's bearer token (`Unauthorized`).
    func authorize(_ credential: String?) throws {
        guard let admin = configuration.adminCredential else {
            throw ServiceError.unauthorized("Unauthorized", "key management is disabled: no administrator credential")
        }
        guard let credential, admin.matches(credential) else {
            throw ServiceError.unauthorized(
                "Unauthorized",
                "key management needs the administrator's token (Authorization: Bearer …)"
            )
        }
    }

    /// A 500 for the broker's own failures (storage, enclave), without internals for the client.
    static func failure(_ message: String) -> ServiceError {
        ServiceError(status: .internalServerError, code: "InternalError", message: message)
    }

    /// Key names as Key Vault allows them: 1 to 127 of `0-9a-zA-Z-`.
    static func checkName(_ name: String) throws {
        guard (1...127).contains(name.utf8.count),
            name.utf8.allSatisfy({ byte in
                byte == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                    || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            })
        else {
            throw ServiceError.badRequest(
                "BadParameter",
                "a key name is 1 to 127 characters of 0-9, a-z, A-Z and -: \(ServiceErrorQuote.quote(String(name.prefix(64))))"
            )
        }
    }

    /// Versions as the broker makes them: 32 lowercase hexadecimal digits.
    static func checkVersion(_ version: String) throws {
        guard version.utf8.count == 32,
            version.utf8.allSatisfy({
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                    || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
            })
        else {
            throw ServiceError.badRequest(
                "BadParameter",
                "a key version is 32 lowercase hexadecimal digits: \(ServiceErrorQuote.quote(String(version.prefix(64))))"
            )
        }
    }

    /// A new version identifier.
    static func newVersion() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// Appends an audit record; a failure to audit fails the request (nothing happens unrecorded).
    func audit(
        _ operation: String,
        key: String? = nil,
        version: String? = nil,
        result: String,
        reason: String,
        issuer: String? = nil,
        jti: String? = nil,
        claims: String? = nil
    ) async throws {
        do {
            try await auditLog.append(
                KeyBrokerAuditEntry(
                    id: 0,
                    time: Date().timeIntervalSince1970,
                    operation: operation,
                    key: key,
                    version: version,
                    result: result,
                    reason: reason,
                    issuer: issuer,
                    jti: jti,
                    claims: claims
                )
            )
        } catch {
            throw Self.failure("the audit log could not be written")
        }
    }

    /// Counts an anonymous release refusal (`KeyBrokerRefusalCount`); a failure to count fails the request, as a
    /// failure to audit does.
    func countRefusal(key: String, code: String) async throws {
        do {
            try await refusals.count(key: key, code: code)
        } catch {
            throw Self.failure("the audit log could not be written")
        }
    }

    /// Anonymous release refusals, counted per minute, key and code, newest first (administrators).
    public func refusalLog(limit: Int, credential: String?) async throws -> KeyBrokerRefusalLog {
        try authorize(credential)
        return KeyBrokerRefusalLog(value: try await store.refusalCounts(limit: max(1, min(limit, 10_000))))
    }

    /// The audit log, newest first (administrators).
    public func auditLog(limit: Int, credential: String?) async throws -> KeyBrokerAuditLog {
        try authorize(credential)
        return KeyBrokerAuditLog(value: try await store.auditEntries(limit: max(1, min(limit, 10_000))))
    }
}

/// Quoting of untrusted text in messages (as JSON string literals).
enum ServiceErrorQuote {
    static func quote(_ text: String) -> String { TokenValue.string(text).jsonText }
}
