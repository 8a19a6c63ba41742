public import Crypto
public import EnclaveCore

/// A clean room contract: who takes part, which data, which queries, which output rules, which enclave.
///
/// A contract is a canonical JSON document (see ``CanonicalJSON``); its ID is the SHA-256 of those bytes. Build one
/// from a readable spec with ``init(spec:)``; read a canonical one with ``init(canonicalBytes:)``, which refuses any
/// other encoding of the same content so that one contract never has two IDs. It takes effect only when every
/// party signed it (``ContractState``).
///
/// Lists of named things are sorted by name in the canonical form (parties, data sets, queries, rules,
/// recipients, roles, parameters, readable and forbidden columns); a data set's columns keep their order (the
/// order of the CSV file).
public struct Contract: Hashable, Sendable {
    /// What a party does.
    public enum Role: String, Hashable, Sendable, CaseIterable {
        /// Brings a data set.
        case dataOwner
        /// Runs approved queries.
        case analyst
        /// Receives results.
        case resultRecipient
    }

    /// A party: a name, its roles and the P-256 key it signs with.
    public struct Party: Hashable, Sendable {
        /// The party's unique name.
        public var name: String
        /// Its roles (at least one).
        public var roles: [Role]
        /// Its ES256 signing key (signs the contract and halt statements).
        public var signingKey: P256.Signing.PublicKey

        /// Creates one from its members, each as documented on its property.
        public init(name: String, roles: [Role], signingKey: P256.Signing.PublicKey) {
            self.name = name
            self.roles = roles
            self.signingKey = signingKey
        }

        public static func == (lhs: Party, rhs: Party) -> Bool {
            lhs.name == rhs.name && lhs.roles == rhs.roles
                && lhs.signingKey.x963Representation == rhs.signingKey.x963Representation
        }
        public func hash(into hasher: inout Hasher) {
            hasher.combine(name)
            hasher.combine(signingKey.x963Representation)
        }
    }

    /// The type of a column or a query parameter.
    public enum ValueType: String, Hashable, Sendable, CaseIterable {
        /// A 64-bit signed integer.
        case integer
        /// A finite double.
        case real
        /// UTF-8 text.
        case text
        /// A calendar date `YYYY-MM-DD` (stored as text, so it sorts and compares as a date).
        case date
    }

    /// A column of a data set.
    public struct Column: Hashable, Sendable {
        /// Its name (an SQL identifier: letters, digits, `_`).
        public var name: String
        /// Its type.
        public var type: ValueType

        /// Creates one from its members, each as documented on its property.
        public init(name: String, type: ValueType) {
            self.name = name
            self.type = type
        }
    }

    /// A data set: one table in the clean room.
    public struct DataSet: Hashable, Sendable {
        /// The table name (an SQL identifier).
        public var name: String
        /// The party that owns and encrypts it.
        public var owner: String
        /// The columns, in file order.
        public var columns: [Column]
        /// The columns queries may read at all; no other column of the table is visible.
        public var readable: [String]
        /// The column that identifies a person or entity, for the minimum distinct identities per output group.
        public var identity: String

        /// Creates one from its members, each as documented on its property.
        public init(name: String, owner: String, columns: [Column], readable: [String], identity: String) {
            self.name = name
            self.owner = owner
            self.columns = columns
            self.readable = readable
            self.identity = identity
        }
    }

    /// A named, typed query parameter (bound as `:name`).
    public struct Parameter: Hashable, Sendable {
        /// Its name (an SQL identifier, used as `:name` in the SQL).
        public var name: String
        /// Its type; a value of another type is refused.
        public var type: ValueType

        /// Creates one from its members, each as documented on its property.
        public init(name: String, type: ValueType) {
            self.name = name
            self.type = type
        }
    }

    /// A noised output column of a query (differential privacy).
    public struct Noise: Hashable, Sendable {
        /// The output column that gets Laplace noise.
        public var column: String
        /// How much one identity can change the column (1 for a count of distinct identities; the clamp bound
        /// for a clamped sum).
        public var sensitivity: Int64

        /// Creates one from its members, each as documented on its property.
        public init(column: String, sensitivity: Int64) {
            self.column = column
            self.sensitivity = sensitivity
        }
    }

    /// An approved query.
    public struct Query: Hashable, Sendable {
        /// Its ID, what a run request names.
        public var id: String
        /// The SQL (one `SELECT`), with parameters as `:name`.
        public var sql: String
        /// Its parameters.
        public var parameters: [Parameter]
        /// The parties that may run it.
        public var runners: [String]
        /// The data sets it reads (its output rules are the strictest of their owners').
        public var reads: [String]
        /// Output columns computed by an expression (no table column as origin) that every party accepts to
        /// release; any other computed output column is refused (rule `computedColumns`).
        public var computed: [String]
        /// Output columns that get noise when an owner read configures differential privacy.
        public var noise: [Noise]

        /// Creates one from its members, each as documented on its property.
        public init(
            id: String,
            sql: String,
            parameters: [Parameter],
            runners: [String],
            reads: [String],
            computed: [String],
            noise: [Noise] = []
        ) {
            self.id = id
            self.sql = sql
            self.parameters = parameters
            self.runners = runners
            self.reads = reads
            self.computed = computed
            self.noise = noise
        }
    }

    /// Differential privacy settings of an owner.
    public struct Privacy: Hashable, Sendable {
        /// ε spent by one query, in thousandths (500 = ε 0.5).
        public var epsilonMilli: Int64
        /// The total ε this owner's data may ever give, in thousandths.
        public var budgetMilli: Int64

        /// Creates one from its members, each as documented on its property.
        public init(epsilonMilli: Int64, budgetMilli: Int64) {
            self.epsilonMilli = epsilonMilli
            self.budgetMilli = budgetMilli
        }
    }

    /// One owner's output rules; a query is held to the strictest rules among the owners of what it reads.
    public struct OutputRule: Hashable, Sendable {
        /// The data owner.
        public var owner: String
        /// Every output group must count at least this many distinct identities of each data set read.
        public var minIdentities: Int64
        /// Columns (`dataset.column`) that may never appear in any output.
        public var neverOutput: [String]
        /// Optional differential privacy.
        public var privacy: Privacy?

        /// Creates one from its members, each as documented on its property.
        public init(owner: String, minIdentities: Int64, neverOutput: [String], privacy: Privacy? = nil) {
            self.owner = owner
            self.minIdentities = minIdentities
            self.neverOutput = neverOutput
            self.privacy = privacy
        }
    }

    /// A party that receives results, and its HPKE key.
    public struct Recipient: Hashable, Sendable {
        /// The party.
        public var party: String
        /// Its HPKE public key (DHKEM(X25519, HKDF-SHA256)).
        public var key: Curve25519.KeyAgreement.PublicKey

        /// Creates one from its members, each as documented on its property.
        public init(party: String, key: Curve25519.KeyAgreement.PublicKey) {
            self.party = party
            self.key = key
        }

        public static func == (lhs: Recipient, rhs: Recipient) -> Bool {
            lhs.party == rhs.party && lhs.key.rawRepresentation == rhs.key.rawRepresentation
        }
        public func hash(into hasher: inout Hasher) {
            hasher.combine(party)
            hasher.combine(key.rawRepresentation)
        }
    }

    /// The clean room enclave the contract trusts.
    public struct EnclaveRequirement: Hashable, Sendable {
        /// The enclave's signer ID.
        public var signerID: Digest32
        /// Its product ID.
        public var productID: UInt16
        /// The lowest security version accepted.
        public var minSecurityVersion: UInt16
        /// Optionally, the one build accepted: its uniqueID (`x-ms-sgx-mrenclave`), on top of signer, product,
        /// minimum security version and not debug. `nil` (the default, and the JSON without `uniqueID`) accepts any
        /// build of the signer and product — any enclave code the signer ever gave that product.
        public var uniqueID: Digest32?

        /// Creates one from its members, each as documented on its property.
        public init(signerID: Digest32, productID: UInt16, minSecurityVersion: UInt16, uniqueID: Digest32? = nil) {
            self.signerID = signerID
            self.productID = productID
            self.minSecurityVersion = minSecurityVersion
            self.uniqueID = uniqueID
        }
    }

    /// The format version (1).
    public var version: Int64 = 1
    /// A name for people.
    public var name: String
    /// The parties.
    public var parties: [Party]
    /// The data sets.
    public var dataSets: [DataSet]
    /// The approved queries.
    public var queries: [Query]
    /// The owners' output rules.
    public var outputRules: [OutputRule]
    /// The result recipients.
    public var recipients: [Recipient]
    /// The enclave allowed to run the clean room.
    public var enclave: EnclaveRequirement

    /// Creates one from its members, each as documented on its property.
    public init(
        name: String,
        parties: [Party],
        dataSets: [DataSet],
        queries: [Query],
        outputRules: [OutputRule],
        recipients: [Recipient],
        enclave: EnclaveRequirement
    ) {
        self.name = name
        self.parties = parties
        self.dataSets = dataSets
        self.queries = queries
        self.outputRules = outputRules
        self.recipients = recipients
        self.enclave = enclave
    }

    /// The canonical bytes (the contract's one encoding).
    public var canonicalBytes: [UInt8] { json.canonicalBytes }

    /// The contract ID: SHA-256 of ``canonicalBytes``.
    public var id: Digest32 {
        // Force-try is safe: SHA-256 is 32 bytes.
        try! Digest32(bytes: SHA256.hash(data: canonicalBytes))
    }

    /// The party named `name`.
    public func party(_ name: String) -> Party? { parties.first { $0.name == name } }
    /// The data set named `name`.
    public func dataSet(_ name: String) -> DataSet? { dataSets.first { $0.name == name } }
    /// The approved query with ID `id`.
    public func query(_ id: String) -> Query? { queries.first { $0.id == id } }
    /// The output rule of owner `owner`.
    public func outputRule(_ owner: String) -> OutputRule? { outputRules.first { $0.owner == owner } }
}
