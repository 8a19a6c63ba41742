import CleanRoom
import Crypto
import EnclaveCore
import Testing

/// A three-party contract (two banks pooling transactions, one analyst who also receives results) and its keys.
struct Fixture {
    let bankA = P256.Signing.PrivateKey()
    let bankB = P256.Signing.PrivateKey()
    let analyst = P256.Signing.PrivateKey()
    let recipient = Curve25519.KeyAgreement.PrivateKey()
    var minIdentities: Int64 = 3
    var privacy: Contract.Privacy?

    func keys(_ party: String) -> P256.Signing.PrivateKey {
        switch party {
        case "bank-a": return bankA
        case "bank-b": return bankB
        default: return analyst
        }
    }

    static let columns = [
        Contract.Column(name: "card", type: .text),
        Contract.Column(name: "merchant", type: .text),
        Contract.Column(name: "amount", type: .integer),
        Contract.Column(name: "score", type: .real),
        Contract.Column(name: "day", type: .date),
        Contract.Column(name: "secret", type: .text),
    ]

    /// Count shared cards per merchant seen by both banks, with the identity counts the output rules need.
    static let sharedSQL = """
        SELECT a.merchant AS merchant, COUNT(*) AS n, \
        COUNT(DISTINCT a.card) AS _ids_a_tx, COUNT(DISTINCT b.card) AS _ids_b_tx \
        FROM a_tx a JOIN b_tx b ON a.card = b.card \
        WHERE a.amount >= :min_amount GROUP BY a.merchant ORDER BY a.merchant
        """

    var contract: Contract {
        var contract = Contract(
            name: "shared fraud patterns",
            parties: [
                .init(name: "bank-a", roles: [.dataOwner], signingKey: bankA.publicKey),
                .init(name: "bank-b", roles: [.dataOwner], signingKey: bankB.publicKey),
                .init(name: "analyst", roles: [.analyst, .resultRecipient], signingKey: analyst.publicKey),
            ],
            dataSets: ["a_tx", "b_tx"].map { name in
                .init(
                    name: name,
                    owner: name == "a_tx" ? "bank-a" : "bank-b",
                    columns: Self.columns,
                    readable: ["amount", "card", "day", "merchant", "score"],
                    identity: "card"
                )
            },
            queries: [
                .init(
                    id: "shared-by-merchant",
                    sql: Self.sharedSQL,
                    parameters: [.init(name: "min_amount", type: .integer)],
                    runners: ["analyst"],
                    reads: ["a_tx", "b_tx"],
                    computed: ["n"],
                    noise: [.init(column: "n", sensitivity: 1)]
                )
            ],
            outputRules: [
                .init(owner: "bank-a", minIdentities: minIdentities, neverOutput: ["a_tx.card"], privacy: privacy),
                .init(owner: "bank-b", minIdentities: 2, neverOutput: ["b_tx.card"]),
            ],
            recipients: [.init(party: "analyst", key: recipient.publicKey)],
            enclave: .init(
                signerID: try! Digest32(bytes: [UInt8](repeating: 7, count: 32)),
                productID: 1,
                minSecurityVersion: 1
            )
        )
        contract.sortLists()
        return contract
    }

    func signatures(
        _ contract: Contract,
        by parties: [String] = ["analyst", "bank-a", "bank-b"]
    ) throws
        -> [ContractSignature]
    {
        try parties.map { try ContractSignature(signing: contract, as: $0, key: keys($0)) }
    }
}

/// Expect `body` to throw a `CleanRoomError` with `code` (and, given `rule`, a reason naming that rule first): the
/// test fails when nothing is thrown, another type is, or the code differs.
func expectError(
    _ code: CleanRoomError.Code,
    _ rule: String? = nil,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) {
    do {
        try body()
        Issue.record("expected \(code), nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as CleanRoomError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        if let rule { #expect(error.reason.hasPrefix(rule + ":"), "\(error)", sourceLocation: sourceLocation) }
    } catch {
        Issue.record("expected \(code), got \(error)", sourceLocation: sourceLocation)
    }
}
