import Crypto
import EnclaveCore

extension Contract {
    /// Read a canonical contract: the bytes must parse, validate, and be exactly the contract's canonical encoding.
    ///
    /// - Throws: ``CleanRoomError`` ``CleanRoomError/Code/malformed``, ``CleanRoomError/Code/unknownField``,
    ///   ``CleanRoomError/Code/nonCanonical`` (whitespace, member order, unsorted lists, key encodings),
    ///   ``CleanRoomError/Code/invalidContract``.
    public init(canonicalBytes bytes: [UInt8]) throws(CleanRoomError) {
        let value = try CanonicalJSON.parseCanonical(bytes)
        self = try Contract(json: value, allowPEM: false)
        var sorted = self
        sorted.sortLists()
        guard sorted.canonicalBytes == bytes else {
            throw CleanRoomError(
                .nonCanonical,
                "contract is not in canonical form (lists sorted by name, keys as base64url raw points)"
            )
        }
        try validate()
    }

    /// Build a contract from a readable spec: the same fields as the canonical form, with free whitespace and
    /// order, strings normalized to NFC, and signing keys also as PEM (`-----BEGIN PUBLIC KEY-----`).
    ///
    /// - Throws: the errors of ``init(canonicalBytes:)`` except ``CleanRoomError/Code/nonCanonical``.
    public init(spec bytes: [UInt8]) throws(CleanRoomError) {
        let value = try CanonicalJSON.parse(bytes).normalized
        self = try Contract(json: value, allowPEM: true)
        sortLists()
        try validate()
    }

    /// Sort every list into its canonical order (see the type's discussion).
    public mutating func sortLists() {
        parties.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        for index in parties.indices {
            parties[index].roles.sort { $0.rawValue < $1.rawValue }
        }
        dataSets.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        for index in dataSets.indices {
            dataSets[index].readable.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        }
        queries.sort { $0.id.utf8.lexicographicallyPrecedes($1.id.utf8) }
        for index in queries.indices {
            queries[index].parameters.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
            queries[index].runners.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            queries[index].reads.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            queries[index].computed.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            queries[index].noise.sort { $0.column.utf8.lexicographicallyPrecedes($1.column.utf8) }
        }
        outputRules.sort { $0.owner.utf8.lexicographicallyPrecedes($1.owner.utf8) }
        for index in outputRules.indices {
            outputRules[index].neverOutput.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        }
        recipients.sort { $0.party.utf8.lexicographicallyPrecedes($1.party.utf8) }
    }

    /// The contract as a JSON value (its ``CanonicalJSON/canonicalBytes`` are the contract's bytes).
    public var json: CanonicalJSON {
        var enclaveObject: [String: CanonicalJSON] = [
            "signerID": .string(enclave.signerID.hex),
            "productID": .integer(Int64(enclave.productID)),
            "minSecurityVersion": .integer(Int64(enclave.minSecurityVersion)),
        ]
        // Absent unless pinned, so that a contract without a pin keeps its bytes (and its ID).
        if let uniqueID = enclave.uniqueID { enclaveObject["uniqueID"] = .string(uniqueID.hex) }
        return .object([
            "version": .integer(version),
            "name": .string(name),
            "parties": .array(
                parties.map { party in
                    .object([
                        "name": .string(party.name),
                        "roles": .array(party.roles.map { .string($0.rawValue) }),
                        "signingKey": .string(Base64URL.encode(party.signingKey.x963Representation)),
                    ])
                }
            ),
            "dataSets": .array(
                dataSets.map { set in
                    .object([
                        "name": .string(set.name),
                        "owner": .string(set.owner),
                        "columns": .array(
                            set.columns.map { .object(["name": .string($0.name), "type": .string($0.type.rawValue)]) }
                        ),
                        "readable": .array(set.readable.map { .string($0) }),
                        "identity": .string(set.identity),
                    ])
                }
            ),
            "queries": .array(
                queries.map { query in
                    var object: [String: CanonicalJSON] = [
                        "id": .string(query.id),
                        "sql": .string(query.sql),
                        "parameters": .array(
                            query.parameters.map {
                                .object(["name": .string($0.name), "type": .string($0.type.rawValue)])
                            }
                        ),
                        "runners": .array(query.runners.map { .string($0) }),
                        "reads": .array(query.reads.map { .string($0) }),
                        "computed": .array(query.computed.map { .string($0) }),
                    ]
                    if !query.noise.isEmpty {
                        object["noise"] = .array(
                            query.noise.map {
                                .object(["column": .string($0.column), "sensitivity": .integer($0.sensitivity)])
                            }
                        )
                    }
                    return .object(object)
                }
            ),
            "outputRules": .array(
                outputRules.map { rule in
                    var object: [String: CanonicalJSON] = [
                        "owner": .string(rule.owner),
                        "minIdentities": .integer(rule.minIdentities),
                        "neverOutput": .array(rule.neverOutput.map { .string($0) }),
                    ]
                    if let privacy = rule.privacy {
                        object["privacy"] = .object([
                            "epsilonMilli": .integer(privacy.epsilonMilli),
                            "budgetMilli": .integer(privacy.budgetMilli),
                        ])
                    }
                    return .object(object)
                }
            ),
            "recipients": .array(
                recipients.map {
                    .object([
                        "party": .string($0.party),
                        "key": .string(Base64URL.encode($0.key.rawRepresentation)),
                    ])
                }
            ),
            "enclave": .object(enclaveObject),
        ])
    }

    init(json value: CanonicalJSON, allowPEM: Bool) throws(CleanRoomError) {
        var fields = try JSONFields(value, "contract")
        let version = try fields.integer("version", in: 1...1)
        let name = try fields.string("name", maxLength: 256)
        var parties: [Party] = []
        for item in try fields.array("parties", maxCount: 64) {
            var party = try JSONFields(item, "party")
            let partyName = try party.string("name", maxLength: 128)
            var roles: [Role] = []
            for role in try party.strings("roles", maxCount: 3) {
                guard let parsed = Role(rawValue: role) else {
                    throw CleanRoomError(.malformed, "party \(partyName): unknown role \"\(role)\"")
                }
                roles.append(parsed)
            }
            let key = try Self.signingKey(try party.string("signingKey"), allowPEM: allowPEM, party: partyName)
            try party.finish()
            parties.append(Party(name: partyName, roles: roles, signingKey: key))
        }
        var dataSets: [DataSet] = []
        for item in try fields.array("dataSets", maxCount: 64) {
            var set = try JSONFields(item, "data set")
            let setName = try set.string("name", maxLength: 64)
            let owner = try set.string("owner", maxLength: 128)
            var columns: [Column] = []
            for column in try set.array("columns", maxCount: 256) {
                var fields = try JSONFields(column, "column of \(setName)")
                let columnName = try fields.string("name", maxLength: 64)
                let type = try Self.valueType(try fields.string("type"), "column \(setName).\(columnName)")
                try fields.finish()
                columns.append(Column(name: columnName, type: type))
            }
            let readable = try set.strings("readable", maxCount: 256)
            let identity = try set.string("identity", maxLength: 64)
            try set.finish()
            dataSets.append(
                DataSet(name: setName, owner: owner, columns: columns, readable: readable, identity: identity)
            )
        }
        var queries: [Query] = []
        for item in try fields.array("queries", maxCount: 256) {
            var query = try JSONFields(item, "query")
            let id = try query.string("id", maxLength: 128)
            let sql = try query.string("sql", maxLength: 64 << 10)
            var parameters: [Parameter] = []
            for parameter in try query.array("parameters", maxCount: 64) {
                var fields = try JSONFields(parameter, "parameter of \(id)")
                let parameterName = try fields.string("name", maxLength: 64)
                let type = try Self.valueType(try fields.string("type"), "parameter \(id).\(parameterName)")
                try fields.finish()
                parameters.append(Parameter(name: parameterName, type: type))
            }
            let runners = try query.strings("runners", maxCount: 64)
            let reads = try query.strings("reads", maxCount: 64)
            let computed = try query.strings("computed", maxCount: 256)
            var noise: [Noise] = []
            if query.has("noise") {
                for entry in try query.array("noise", maxCount: 256) {
                    var fields = try JSONFields(entry, "noise of \(id)")
                    let column = try fields.string("column", maxLength: 64)
                    let sensitivity = try fields.integer("sensitivity", in: 1...(1 << 40))
                    try fields.finish()
                    noise.append(Noise(column: column, sensitivity: sensitivity))
                }
            }
            try query.finish()
            queries.append(
                Query(
                    id: id,
                    sql: sql,
                    parameters: parameters,
                    runners: runners,
                    reads: reads,
                    computed: computed,
                    noise: noise
                )
            )
        }
        var outputRules: [OutputRule] = []
        for item in try fields.array("outputRules", maxCount: 64) {
            var rule = try JSONFields(item, "output rule")
            let owner = try rule.string("owner", maxLength: 128)
            let minIdentities = try rule.integer("minIdentities", in: 1...100_000)
            let neverOutput = try rule.strings("neverOutput", maxCount: 1024)
            var privacy: Privacy?
            if rule.has("privacy") {
                var fields = try JSONFields(try rule.object("privacy"), "privacy of \(owner)")
                let epsilon = try fields.integer("epsilonMilli", in: 1...100_000)
                let budget = try fields.integer("budgetMilli", in: 1...100_000_000)
                try fields.finish()
                privacy = Privacy(epsilonMilli: epsilon, budgetMilli: budget)
            }
            try rule.finish()
            outputRules.append(
                OutputRule(owner: owner, minIdentities: minIdentities, neverOutput: neverOutput, privacy: privacy)
            )
        }
        var recipients: [Recipient] = []
        for item in try fields.array("recipients", maxCount: 64) {
            var recipient = try JSONFields(item, "recipient")
            let party = try recipient.string("party", maxLength: 128)
            let encoded = try recipient.string("key", maxLength: 128)
            guard let raw = Base64URL.decode(encoded), raw.count == 32, Base64URL.encode(raw) == encoded,
                let key = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: raw)
            else {
                throw CleanRoomError(.malformed, "recipient \(party): key is not a base64url X25519 public key")
            }
            try recipient.finish()
            recipients.append(Recipient(party: party, key: key))
        }
        var enclaveFields = try JSONFields(try fields.object("enclave"), "enclave")
        let signerHex = try enclaveFields.string("signerID", maxLength: 64)
        guard signerHex.utf8.count == 64, signerHex == signerHex.lowercased(),
            let signerID = try? Digest32(hex: signerHex)
        else { throw CleanRoomError(.malformed, "enclave.signerID is not 64 lower-case hex digits") }
        let productID = UInt16(try enclaveFields.integer("productID", in: 0...Int64(UInt16.max)))
        let minSVN = UInt16(try enclaveFields.integer("minSecurityVersion", in: 0...Int64(UInt16.max)))
        var uniqueID: Digest32?
        if enclaveFields.has("uniqueID") {
            let uniqueHex = try enclaveFields.string("uniqueID", maxLength: 64)
            guard uniqueHex.utf8.count == 64, uniqueHex == uniqueHex.lowercased(),
                let digest = try? Digest32(hex: uniqueHex)
            else { throw CleanRoomError(.malformed, "enclave.uniqueID is not 64 lower-case hex digits") }
            uniqueID = digest
        }
        try enclaveFields.finish()
        try fields.finish()
        self.init(
            name: name,
            parties: parties,
            dataSets: dataSets,
            queries: queries,
            outputRules: outputRules,
            recipients: recipients,
            enclave: EnclaveRequirement(
                signerID: signerID,
                productID: productID,
                minSecurityVersion: minSVN,
                uniqueID: uniqueID
            )
        )
        self.version = version
    }

    static func valueType(_ text: String, _ what: String) throws(CleanRoomError) -> ValueType {
        guard let type = ValueType(rawValue: text) else {
            throw CleanRoomError(.malformed, "\(what): unknown type \"\(text)\"")
        }
        return type
    }

    static func signingKey(
        _ text: String,
        allowPEM: Bool,
        party: String
    ) throws(CleanRoomError) -> P256.Signing.PublicKey {
        if allowPEM, text.hasPrefix("-----BEGIN") {
            guard let key = try? P256.Signing.PublicKey(pemRepresentation: text) else {
                throw CleanRoomError(.malformed, "party \(party): signingKey is not a P-256 public key PEM")
            }
            return key
        }
        guard let raw = Base64URL.decode(text), raw.count == 65, Base64URL.encode(raw) == text,
            let key = try? P256.Signing.PublicKey(x963Representation: raw)
        else {
            throw CleanRoomError(
                .malformed,
                "party \(party): signingKey is not a base64url uncompressed P-256 point (65 bytes)"
            )
        }
        return key
    }
}
