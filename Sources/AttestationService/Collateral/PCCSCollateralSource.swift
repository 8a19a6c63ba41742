internal import AsyncHTTPClient
public import Attestation
internal import EnclaveCore
public import Foundation
public import Logging
internal import Synchronization

/// Collateral from a PCCS or Intel's PCS (API v4): TCB info and QE identity per TEE (and FMSPC), the PCK CRL per CA,
/// the root CA CRL, with their issuer chains from the response headers. Each piece is cached in the service's store
/// (and in memory) until its `nextUpdate`, fetched again ahead of that (within 10 % of its validity window, at
/// least a day), and the last good copy is served while it is still valid — never after. Fetches have a timeout and
/// a size limit; an answer that is not what was asked for (another FMSPC or TEE, garbage) is refused by name and not
/// cached. Signatures, chains and dates are checked by the verifier on every quote, not trusted from here.
public final class PCCSCollateralSource: CollateralSource {
    /// Where and how to fetch.
    public struct Options: Sendable {
        /// The PCCS or PCS base URL, e.g. `https://pccs.example:8081` (the API paths are appended).
        public var baseURL: String
        /// The root CA CRL's URL: a PCCS serves it at `{base}/sgx/certification/v4/rootcacrl` (the default); with
        /// Intel's PCS use Intel's published URL for the SGX Root CA CRL.
        public var rootCACRLURL: String?
        /// How long one fetch may take.
        public var timeout: Duration = .seconds(10)
        /// The largest response body accepted.
        public var maxResponseSize = 1 << 20
        /// The shortest time between two fetches of one piece (after a success or a failure) while a valid copy
        /// is at hand.
        public var minimumRefetchInterval: TimeInterval = 300

        /// Fetch from `baseURL`, with the defaults: 10-second fetches, 1 MiB responses, at most one refetch of a piece
        /// every 5 minutes while a valid copy is at hand.
        ///
        /// - Parameters:
        ///   - baseURL: The PCCS or PCS base URL; checked when the source is created.
        ///   - rootCACRLURL: Where the root CA CRL is; `nil` uses the PCCS path.
        public init(baseURL: String, rootCACRLURL: String? = nil) {
            self.baseURL = baseURL
            self.rootCACRLURL = rootCACRLURL
        }
    }

    /// One thing fetched: what it is, where from, and its cache key.
    enum Resource: Hashable, Sendable, CustomStringConvertible {
        case tcbInfo(CollateralPlatform.TEE, fmspc: String)
        case qeIdentity(CollateralPlatform.TEE)
        case pckCRL(CollateralPlatform.PCKCA)
        case rootCACRL

        var key: String {
            switch self {
            case .tcbInfo(let tee, let fmspc): "v4/\(tee.rawValue)/tcb/\(fmspc)"
            case .qeIdentity(let tee): "v4/\(tee.rawValue)/qe/identity"
            case .pckCRL(let ca): "v4/pckcrl/\(ca.rawValue)"
            case .rootCACRL: "v4/rootcacrl"
            }
        }

        var description: String {
            switch self {
            case .tcbInfo(let tee, let fmspc): "the \(tee.rawValue.uppercased()) TCB info for FMSPC \(fmspc)"
            case .qeIdentity(let tee): "the \(tee == .tdx ? "TD_QE" : "QE") identity"
            case .pckCRL(let ca): "the PCK \(ca.rawValue) CA CRL"
            case .rootCACRL: "the root CA CRL"
            }
        }
    }

    struct State {
        var pieces: [String: CachedCollateral] = [:]
        var lastFailure: [String: (time: Date, error: ServiceError)] = [:]
        var inFlight: [String: Task<CachedCollateral?, any Error>] = [:]
        var refreshes: [Task<Void, Never>] = []
        var assembled: [CollateralPlatform: (pieces: [CachedCollateral], collateral: Collateral)] = [:]
    }

    /// Where and how this source fetches.
    public let options: Options
    let store: any ServiceStore
    let logger: Logger
    let state = Mutex(State())

    /// A source fetching from `options.baseURL` and caching in `store`.
    /// - Throws: ``ServiceError`` `InvalidPCCSURL` when the URL is not `http(s)://host[:port][/path]`.
    public init(
        options: Options,
        store: any ServiceStore,
        logger: Logger = Logger(label: "enclavekit.attestation.pccs")
    ) throws {
        for url in [options.baseURL] + (options.rootCACRLURL.map { [$0] } ?? []) {
            guard let components = URLComponents(string: url), ["http", "https"].contains(components.scheme),
                components.host?.isEmpty == false, components.query == nil, components.fragment == nil
            else {
                throw ServiceError.badRequest("InvalidPCCSURL", "\(url) is not an http(s)://host[:port][/path] URL")
            }
        }
        var options = options
        while options.baseURL.hasSuffix("/") { options.baseURL.removeLast() }
        self.options = options
        self.store = store
        self.logger = logger
    }

    public func collateral(for platform: CollateralPlatform, at time: Date) async throws -> Collateral? {
        let resources: [Resource] = [
            .tcbInfo(platform.tee, fmspc: platform.fmspc), .qeIdentity(platform.tee), .pckCRL(platform.pckCA),
            .rootCACRL,
        ]
        var pieces: [CachedCollateral] = []
        for resource in resources {
            guard let piece = try await piece(resource, at: time) else { return nil }
            pieces.append(piece)
        }
        if let memo = state.withLock({ $0.assembled[platform] }), memo.pieces == pieces { return memo.collateral }
        let collateral: Collateral
        do {
            collateral = try Collateral(
                tcbInfoResponse: pieces[0].body,
                tcbInfoIssuerChain: pieces[0].issuerChain,
                qeIdentityResponse: pieces[1].body,
                qeIdentityIssuerChain: pieces[1].issuerChain,
                pckCRL: pieces[2].body,
                pckCRLIssuerChain: pieces[2].issuerChain,
                rootCACRL: pieces[3].body
            )
        } catch {
            throw Self.fetchFailed("the collateral from the PCCS does not assemble: \(error.reason)")
        }
        state.withLock { $0.assembled[platform] = (pieces, collateral) }
        return collateral
    }

    public func hasCollateral(for platform: CollateralPlatform, at time: Date) async -> Bool {
        let keys = [
            Resource.tcbInfo(platform.tee, fmspc: platform.fmspc), .qeIdentity(platform.tee), .pckCRL(platform.pckCA),
            .rootCACRL,
        ].map(\.key)
        return state.withLock { state in
            keys.allSatisfy { key in state.pieces[key].map { time < $0.nextUpdate } ?? false }
        }
    }

    // MARK: Cache

    /// The piece valid at `time`: the cached copy (refreshed when near its `nextUpdate`), or a fresh one. `nil`
    /// when the PCCS has none (404 for the TCB info of an unknown FMSPC).
    func piece(_ resource: Resource, at time: Date) async throws -> CachedCollateral? {
        var cached = state.withLock { $0.pieces[resource.key] }
        if cached == nil {
            do {
                cached = try await store.cachedCollateral(key: resource.key)
            } catch {
                logger.warning(
                    "collateral cache unreadable",
                    metadata: ["key": "\(resource.key)", "error": "\(error)"]
                )
            }
            if let cached { state.withLock { $0.pieces[resource.key] = cached } }
        }
        if let cached, time < cached.nextUpdate {
            if time >= Self.refreshPoint(cached), !recentlyTried(resource.key, cached, at: time) {
                refreshInBackground(resource, at: time, cached: cached)
            }
            return cached
        }
        // No valid copy: fetch now, or fail at once while the last failure is recent (no pile-up of requests each
        // waiting for the timeout of a PCCS that is down).
        if let failure = state.withLock({ $0.lastFailure[resource.key] }),
            abs(time.timeIntervalSince(failure.time)) < min(Self.failFastInterval, options.minimumRefetchInterval)
        {
            throw failure.error
        }
        let fresh: CachedCollateral?
        do {
            fresh = try await fetchCoalesced(resource, at: time)
        } catch let error as ServiceError {
            guard let cached else { throw error }
            throw Self.fetchFailed(
                "\(resource) in the cache expired at \(Self.format(cached.nextUpdate)) and no valid copy could be "
                    + "fetched: \(error.message)"
            )
        }
        guard let fresh else { return nil }
        guard time < fresh.nextUpdate, fresh.issued <= time.addingTimeInterval(3600) else {
            throw Self.fetchFailed(
                "the PCCS serves \(resource) valid from \(Self.format(fresh.issued)) to "
                    + "\(Self.format(fresh.nextUpdate)), not at \(Self.format(time))"
            )
        }
        return fresh
    }

    /// How long after a failed fetch a piece with no valid copy fails at once, without fetching again.
    static let failFastInterval: TimeInterval = 30

    /// Fetch a newer copy while the cached one serves; a failure is logged (the copy serves until it expires).
    func refreshInBackground(_ resource: Resource, at time: Date, cached: CachedCollateral) {
        let logger = logger
        let task = Task {
            do {
                _ = try await self.fetchCoalesced(resource, at: time)
            } catch {
                logger.warning(
                    "collateral refresh failed; serving the cached copy until it expires",
                    metadata: ["piece": "\(resource)", "nextUpdate": "\(cached.nextUpdate)", "error": "\(error)"]
                )
            }
        }
        state.withLock { state in
            state.refreshes.append(task)
            if state.refreshes.count > 64 { state.refreshes.removeFirst(state.refreshes.count - 64) }
        }
    }

    /// Wait for the background refreshes started so far (tests; a graceful shutdown).
    public func waitForRefreshes() async {
        let tasks = state.withLock { state in
            defer { state.refreshes = [] }
            return state.refreshes
        }
        for task in tasks { await task.value }
    }

    /// Refresh from the last 10 % of the window (at least the last day, at most half the window).
    static func refreshPoint(_ piece: CachedCollateral) -> Date {
        let window = max(0, piece.nextUpdate.timeIntervalSince(piece.issued))
        let margin = max(window * 0.1, min(86400, window / 2))
        return piece.nextUpdate.addingTimeInterval(-margin)
    }

    /// Whether the piece was fetched, or a fetch failed, within the minimum refetch interval.
    func recentlyTried(_ key: String, _ cached: CachedCollateral, at time: Date) -> Bool {
        let interval = options.minimumRefetchInterval
        if abs(time.timeIntervalSince(cached.fetched)) < interval { return true }
        guard let failure = state.withLock({ $0.lastFailure[key] }) else { return false }
        return abs(time.timeIntervalSince(failure.time)) < interval
    }

    /// One fetch per piece at a time: concurrent requests wait for the same one.
    func fetchCoalesced(_ resource: Resource, at time: Date) async throws -> CachedCollateral? {
        let task = state.withLock { state in
            if let running = state.inFlight[resource.key] { return running }
            let task = Task { try await self.fetchAndCache(resource, at: time) }
            state.inFlight[resource.key] = task
            return task
        }
        defer { state.withLock { if $0.inFlight[resource.key] == task { $0.inFlight[resource.key] = nil } } }
        return try await task.value
    }

    /// Fetch, check and cache one piece. A newer copy replaces the cached one; an older one (a PCCS rolled back)
    /// does not.
    func fetchAndCache(_ resource: Resource, at time: Date) async throws -> CachedCollateral? {
        let fetched: CachedCollateral?
        do {
            fetched = try await fetch(resource, at: time)
        } catch {
            let failure = error as? ServiceError ?? Self.fetchFailed("cannot fetch \(resource): \(error)")
            state.withLock { $0.lastFailure[resource.key] = (time, failure) }
            throw failure
        }
        guard let fetched else { return nil }
        let kept: CachedCollateral = state.withLock { state in
            state.lastFailure[resource.key] = nil
            if let current = state.pieces[resource.key], current.issued > fetched.issued {
                var touched = current
                touched.fetched = fetched.fetched
                state.pieces[resource.key] = touched
                return touched
            }
            state.pieces[resource.key] = fetched
            return fetched
        }
        do {
            try await store.cacheCollateral(kept, key: resource.key)
        } catch {
            logger.warning("collateral cache not written", metadata: ["key": "\(resource.key)", "error": "\(error)"])
        }
        return kept
    }

    // MARK: Fetching

    func url(_ resource: Resource) -> String {
        let base = options.baseURL
        switch resource {
        case .tcbInfo(let tee, let fmspc):
            return "\(base)/\(tee.rawValue)/certification/v4/tcb?fmspc=\(fmspc.uppercased())"
        case .qeIdentity(let tee): return "\(base)/\(tee.rawValue)/certification/v4/qe/identity"
        case .pckCRL(let ca): return "\(base)/sgx/certification/v4/pckcrl?ca=\(ca.rawValue)&encoding=der"
        case .rootCACRL: return options.rootCACRLURL ?? "\(base)/sgx/certification/v4/rootcacrl"
        }
    }

    /// GET the piece and check it is what was asked for. `nil` for a 404 on a TCB info (an FMSPC the PCCS does not
    /// know); every other failure is a ``ServiceError`` `CollateralFetchFailed`.
    func fetch(_ resource: Resource, at time: Date) async throws -> CachedCollateral? {
        let url = url(resource)
        let request = HTTPClientRequest(url: url)
        let response: HTTPClientResponse
        let body: [UInt8]
        do {
            let seconds = options.timeout.components.seconds
            response = try await Self.http.execute(request, timeout: .seconds(max(1, seconds)))
            if response.status.code == 404, case .tcbInfo = resource { return nil }
            guard response.status.code == 200 else {
                // Not followed (`http`): name where it pointed, so the operator can give the PCCS's own URL.
                let location = response.headers.first(name: "Location").map {
                    ", a redirect to \(String(reflecting: String($0.prefix(256)))) (not followed: name the PCCS's own "
                        + "URL)"
                }
                throw Self.fetchFailed(
                    "\(url) answered HTTP \(response.status.code) for \(resource)\(location ?? "")"
                )
            }
            body = Array(buffer: try await response.body.collect(upTo: options.maxResponseSize))
        } catch let error as ServiceError {
            throw error
        } catch {
            throw Self.fetchFailed(
                "cannot fetch \(resource) from \(url) (timeout \(options.timeout), at most "
                    + "\(options.maxResponseSize) bytes): \(error)"
            )
        }
        func header(_ names: [String]) throws -> String {
            for name in names {
                if let value = response.headers.first(name: name) {
                    guard let decoded = value.removingPercentEncoding else {
                        throw Self.fetchFailed("the \(name) header of \(url) is not valid URL encoding")
                    }
                    return decoded
                }
            }
            throw Self.fetchFailed("\(url) answered without the \(names[0]) header")
        }
        do {
            return try Self.checked(resource, body: body, at: time, header: header)
        } catch let error as ServiceError {
            throw error
        } catch let error as EnclaveError {
            throw Self.fetchFailed("\(url) did not answer with \(resource): \(error.reason)")
        }
    }

    /// Parse the answer for `resource`, check it is for what was asked, and read its dates.
    static func checked(
        _ resource: Resource,
        body: [UInt8],
        at time: Date,
        header: ([String]) throws -> String
    ) throws -> CachedCollateral {
        switch resource {
        case .tcbInfo(let tee, let fmspc):
            let info = try TCBInfo(jsonBytes: try Collateral.pcsSignedObject(body, key: "tcbInfo").object)
            guard info.id == tee.rawValue.uppercased(), Hex.encode(info.fmspc).lowercased() == fmspc else {
                throw fetchFailed(
                    "asked for \(resource), the PCCS answered the \(info.id) TCB info for FMSPC "
                        + "\(Hex.encode(info.fmspc).lowercased())"
                )
            }
            let chain = try header(["TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"])
            _ = try Collateral.pcsIssuerChain(chain, what: "the TCB info issuer chain")
            return CachedCollateral(
                body: body,
                issuerChain: chain,
                issued: info.issueDate,
                nextUpdate: info.nextUpdate,
                fetched: time
            )
        case .qeIdentity(let tee):
            let identity = try QEIdentity(
                jsonBytes: try Collateral.pcsSignedObject(body, key: "enclaveIdentity").object
            )
            let expected = tee == .tdx ? "TD_QE" : "QE"
            guard identity.id == expected else {
                throw fetchFailed("asked for \(resource), the PCCS answered the \(identity.id) identity")
            }
            let chain = try header(["SGX-Enclave-Identity-Issuer-Chain", "Enclave-Identity-Issuer-Chain"])
            _ = try Collateral.pcsIssuerChain(chain, what: "the QE identity issuer chain")
            return CachedCollateral(
                body: body,
                issuerChain: chain,
                issued: identity.issueDate,
                nextUpdate: identity.nextUpdate,
                fetched: time
            )
        case .pckCRL(let ca):
            let crl = try CertificateRevocationList(bytes: body)
            let name = ca == .processor ? "CN=Intel SGX PCK Processor CA" : "CN=Intel SGX PCK Platform CA"
            guard String(describing: crl.issuer).contains(name) else {
                throw fetchFailed("asked for \(resource), the PCCS answered a CRL of \(crl.issuer)")
            }
            guard let nextUpdate = crl.nextUpdate else { throw fetchFailed("\(resource) has no nextUpdate") }
            let chain = try header(["SGX-PCK-CRL-Issuer-Chain"])
            _ = try Collateral.pcsIssuerChain(chain, what: "the PCK CRL issuer chain")
            return CachedCollateral(
                body: body,
                issuerChain: chain,
                issued: crl.thisUpdate,
                nextUpdate: nextUpdate,
                fetched: time
            )
        case .rootCACRL:
            let crl = try CertificateRevocationList(bytes: body)
            guard let nextUpdate = crl.nextUpdate else { throw fetchFailed("\(resource) has no nextUpdate") }
            return CachedCollateral(
                body: body,
                issuerChain: "",
                issued: crl.thisUpdate,
                nextUpdate: nextUpdate,
                fetched: time
            )
        }
    }

    /// One client for every PCCS source, for the life of the process: no redirects (the operator named the PCCS;
    /// an answer elsewhere is not its answer), no decompression (the size limit is on what arrives).
    static let http = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: HTTPClient.Configuration.Timeout(connect: .seconds(5), read: .seconds(30)),
            decompression: .disabled
        )
    )

    static func fetchFailed(_ message: String) -> ServiceError {
        ServiceError(status: 503, code: "CollateralFetchFailed", message: message)
    }

    static func format(_ date: Date) -> String { date.formatted(.iso8601) }
}
