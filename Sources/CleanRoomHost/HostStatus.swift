internal import CleanRoom
public import CleanRoomInterface
internal import Foundation

/// What the host shows about its clean room (`GET /status` as JSON, `GET /` as a page).
public struct HostStatus: Codable, Hashable, Sendable {
    /// A party and where it stands.
    public struct Party: Codable, Hashable, Sendable {
        /// Its name.
        public var name: String
        /// Its roles.
        public var roles: [String]
        /// Whether its signature is stored (and verifies).
        public var signed: Bool
        /// Its halt reason, if it halted the contract.
        public var haltReason: String?

        /// Creates one from its members, each as documented on its property.
        public init(name: String, roles: [String], signed: Bool, haltReason: String? = nil) {
            self.name = name
            self.roles = roles
            self.signed = signed
            self.haltReason = haltReason
        }
    }

    /// A data set of the contract and its upload.
    public struct DataSet: Codable, Hashable, Sendable {
        /// The table name.
        public var name: String
        /// Its owner.
        public var owner: String
        /// Whether its ciphertext was uploaded.
        public var uploaded: Bool
        /// The ciphertext's size.
        public var size: Int64?
        /// SHA-256 of the ciphertext, hex.
        public var sha256: String?
        /// Rows loaded into the enclave (nil: not loaded).
        public var rows: Int?
        /// Rows the enclave refused (nil: not loaded).
        public var badRows: Int?

        /// Creates one from its members, each as documented on its property.
        public init(
            name: String,
            owner: String,
            uploaded: Bool,
            size: Int64? = nil,
            sha256: String? = nil,
            rows: Int? = nil,
            badRows: Int? = nil
        ) {
            self.name = name
            self.owner = owner
            self.uploaded = uploaded
            self.size = size
            self.sha256 = sha256
            self.rows = rows
            self.badRows = badRows
        }
    }

    /// A query run and its receipt (the query log). It has no count of suppressed groups: that count can depend on
    /// groups below the minimum, and this page is public.
    public struct QueryRun: Codable, Hashable, Sendable {
        /// The run's ID (its receipt's digest, hex): `GET /receipts/{id}`, `GET /results/{id}`.
        public var id: String
        /// The query.
        public var queryID: String
        /// The receipt's sequence number.
        public var sequence: Int64
        /// When it ran, seconds since 1970.
        public var time: Int64

        /// Creates one from its members, each as documented on its property.
        public init(id: String, queryID: String, sequence: Int64, time: Int64) {
            self.id = id
            self.queryID = queryID
            self.sequence = sequence
            self.time = time
        }
    }

    /// The contract ID (hex), nil before a contract was submitted.
    public var contractID: String?
    /// The contract's name.
    public var contractName: String?
    /// `none`, `draft`, `active` or `halted`.
    public var phase: String
    /// The parties.
    public var parties: [Party]
    /// The data sets.
    public var dataSets: [DataSet]
    /// The enclave's own report (nil when it did not answer).
    public var enclave: CleanRoomStatusReport?
    /// Why the enclave refused the contract, if it did.
    public var enclaveRefusal: String?
    /// The privacy budget left, in thousandths of ε, per owner with differential privacy (nil: not tracked yet).
    public var budgetLeftMilli: [String: Int64]?
    /// The query log, oldest first.
    public var queries: [QueryRun]

    /// Creates one from its members, each as documented on its property.
    public init(
        contractID: String? = nil,
        contractName: String? = nil,
        phase: String,
        parties: [Party],
        dataSets: [DataSet],
        enclave: CleanRoomStatusReport? = nil,
        enclaveRefusal: String? = nil,
        budgetLeftMilli: [String: Int64]? = nil,
        queries: [QueryRun] = []
    ) {
        self.contractID = contractID
        self.contractName = contractName
        self.phase = phase
        self.parties = parties
        self.dataSets = dataSets
        self.enclave = enclave
        self.enclaveRefusal = enclaveRefusal
        self.budgetLeftMilli = budgetLeftMilli
        self.queries = queries
    }

    /// The status of `host`.
    public static func of(_ host: CleanRoomHost) async throws -> HostStatus {
        guard let contract = await host.contract else {
            let enclave = await host.enclaveStatus()
            return HostStatus(
                phase: "none",
                parties: [],
                dataSets: [],
                enclave: enclave.report,
                enclaveRefusal: enclave.refusal
            )
        }
        let state = try await host.state()
        let records = Dictionary(
            try await host.store.dataSets().map { ($0.name, $0) },
            uniquingKeysWith: { first, _ in first }
        )
        let enclave = await host.enclaveStatus()
        let loads = await host.loads
        return HostStatus(
            contractID: contract.id.hex,
            contractName: contract.name,
            phase: state.phase.rawValue,
            parties: contract.parties.map { party in
                Party(
                    name: party.name,
                    roles: party.roles.map(\.rawValue),
                    signed: state.signedBy.contains(party.name),
                    haltReason: state.halts.first { $0.party == party.name }?.reason
                )
            },
            dataSets: contract.dataSets.map { dataSet in
                let record = records[dataSet.name]
                return DataSet(
                    name: dataSet.name,
                    owner: dataSet.owner,
                    uploaded: record != nil,
                    size: record?.size,
                    sha256: record?.sha256,
                    rows: loads[dataSet.name]?.rows,
                    badRows: loads[dataSet.name]?.badRowCount
                )
            },
            enclave: enclave.report,
            enclaveRefusal: enclave.refusal,
            // Summaries only: the results and receipts (up to 1000 runs of up to a million rows each) stay unread on
            // this anonymous path.
            queries: try await host.store.runSummaries().map {
                QueryRun(
                    id: $0.id,
                    queryID: $0.queryID,
                    sequence: $0.sequence,
                    time: Int64($0.time.timeIntervalSince1970)
                )
            }
        )
    }
}
