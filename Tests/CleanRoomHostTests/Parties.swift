import CleanRoom
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import TestSupport

/// Two banks and an analyst under one contract naming a clean room enclave, and that enclave loaded.
struct Parties {
    let bankA = P256.Signing.PrivateKey()
    let bankB = P256.Signing.PrivateKey()
    let analyst = P256.Signing.PrivateKey()
    let recipient = Curve25519.KeyAgreement.PrivateKey()
    var name = "shared fraud patterns"

    func key(_ party: String) -> P256.Signing.PrivateKey {
        switch party {
        case "bank-a": bankA
        case "bank-b": bankB
        default: analyst
        }
    }

    static let columns = [
        Contract.Column(name: "card", type: .text),
        Contract.Column(name: "merchant", type: .text),
        Contract.Column(name: "amount", type: .integer),
    ]

    /// The contract, naming `enclave` (signer, product, minimum security version).
    func contract(enclave: Contract.EnclaveRequirement) -> Contract {
        var contract = Contract(
            name: name,
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
                    readable: ["amount", "card", "merchant"],
                    identity: "card"
                )
            },
            queries: [
                .init(
                    id: "count-by-merchant",
                    sql:
                        "SELECT merchant, COUNT(*) AS n, COUNT(DISTINCT card) AS _ids_a_tx FROM a_tx GROUP BY merchant",
                    parameters: [],
                    runners: ["analyst"],
                    reads: ["a_tx"],
                    computed: ["n"]
                )
            ],
            outputRules: [
                .init(owner: "bank-a", minIdentities: 3, neverOutput: ["a_tx.card"]),
                .init(owner: "bank-b", minIdentities: 2, neverOutput: ["b_tx.card"]),
            ],
            recipients: [.init(party: "analyst", key: recipient.publicKey)],
            enclave: enclave
        )
        contract.sortLists()
        return contract
    }

    /// The signature documents of `parties`.
    func signatures(_ contract: Contract, by parties: [String] = ["analyst", "bank-a", "bank-b"]) throws -> [[UInt8]] {
        try parties.map { try ContractSignature(signing: contract, as: $0, key: key($0)).canonicalBytes }
    }

    /// The data set owner's upload signature over `file` (an encrypted data set of `contract`), as version
    /// `version` of the data set.
    func uploadSignature(_ file: [UInt8], dataSet: String, contract: Contract, version: UInt64 = 1) throws -> String {
        let owner = dataSet == "a_tx" ? "bank-a" : "bank-b"
        return try DataSetUploadSigning.sign(
            contractID: contract.id,
            dataSet: dataSet,
            sha256: SHA256.hash(data: file).map { String(format: "%02x", $0) }.joined(),
            version: version,
            key: key(owner)
        )
    }

    /// SHA-256 of `bytes`, lower-case hex (what an upload declares in `X-Upload-SHA256`).
    static func sha256(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    /// `party`'s halt statement.
    func halt(_ contract: Contract, by party: String, reason: String = "stop") throws -> [UInt8] {
        try HaltStatement(halting: contract, as: party, reason: reason, key: key(party)).canonicalBytes
    }
}

/// The clean room enclave, signed with a fresh key and loaded on the tests' private platform.
struct CleanRoomEnclaveFixture {
    let signed: Fixtures.Signed
    let enclave: Enclave

    static func load(
        config: EnclaveConfig = EnclaveConfig(productID: 1, securityVersion: 1),
        ocalls: OCallTable = OCallTable()
    ) async throws -> Self {
        let signed = try Fixtures.sign("CleanRoomEnclave", config: config)
        var options = Enclave.Options()
        options.ocalls = ocalls
        options.platform = try SimulatedPlatform.open(directory: Fixtures.platformDirectory)
        options.evidenceSource = .simulated
        options.signaturePath = signed.signature
        options.startTimeout = .seconds(120)  // generous: a loaded CI machine starts enclaves slowly
        return Self(signed: signed, enclave: try await Enclave.load(path: signed.image, options: options))
    }

    /// The requirement naming exactly this enclave.
    var requirement: Contract.EnclaveRequirement {
        .init(signerID: signed.identity.signerID, productID: signed.identity.productID, minSecurityVersion: 1)
    }
}
