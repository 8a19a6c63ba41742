import AttestationAPI
import CleanRoom
import Crypto
import EnclaveCore
import Foundation
import KeyBroker
import KeyBrokerInterface
import Testing

/// A clean room's rollback counter moves only with a token naming the contract and the broker's key. A host that
/// opens the broker trusting a certificate of its own (for the genuine authority's URL or another) could otherwise
/// mint such tokens and push any contract's counter ahead: the token's signing certificate must be both trusted now
/// and pinned in the keyring when it was made.
@Suite("KeyBroker: rollback-counter tokens under a host-forged certificate")
struct CounterPinAttackTests {
    static let genuine = TestAuthority.shared
    /// A contract naming the test authority's enclave (signer, product 1, SVN at least 1): the broker reads the
    /// enclave allowed to move the counter from its bytes, carried with the increment.
    static let document = Contract(
        name: "counter pins",
        parties: [.init(name: "owner", roles: [.dataOwner], signingKey: P256.Signing.PrivateKey().publicKey)],
        dataSets: [],
        queries: [],
        outputRules: [],
        recipients: [],
        enclave: .init(
            signerID: try! Digest32(bytes: Hex.decode(TestKeys.signer) ?? []),
            productID: 1,
            minSecurityVersion: 1
        )
    ).canonicalBytes
    static let contract = Hex.encode(Array(SHA256.hash(data: document)))
    static let state = String(repeating: "5e", count: 32)
    /// The clean room enclave's counter request key: bound in the tokens' runtime data, signs each increment.
    static let requestKey = P256.Signing.PrivateKey()

    /// An increment token of `authority` naming the contract, `broker`'s key and ``requestKey``.
    static func token(_ authority: TestAuthority, broker: KeyBroker) throws -> String {
        let raw = Array(broker.keyring.signingKey.publicKey.rawRepresentation)
        let request = Array(requestKey.publicKey.rawRepresentation)
        let runtime = TokenValue.object([
            "contract": .string(contract),
            "counterKey": .object([
                "kty": .string("EC"), "crv": .string("P-256"), "x": .string(Base64URL.encode(raw.prefix(32))),
                "y": .string(Base64URL.encode(raw.suffix(32))),
            ]),
            "counterRequestKey": .object([
                "kty": .string("EC"), "crv": .string("P-256"), "x": .string(Base64URL.encode(request.prefix(32))),
                "y": .string(Base64URL.encode(request.suffix(32))),
            ]),
        ])
        return try authority.token(authority.claims(keys: []).merging(["x-ms-runtime": runtime]) { $1 })
    }

    static func increment(_ broker: KeyBroker, token: String) throws(KeyBrokerError) -> BrokerCounterResponse {
        let nonce = "nonce-0123456789abcdef"
        let message = BrokerCounterRequest.incrementMessage(contract: contract, expected: 0, state: state, nonce: nonce)
        return try broker.counter(
            BrokerCounterRequest(
                token: token,
                operation: "increment",
                contract: contract,
                nonce: nonce,
                expected: 0,
                state: state,
                current: nil,
                contractDocument: document,
                requestSignature: (try? requestKey.signature(for: message)).map { Array($0.rawRepresentation) }
            ),
            now: Date()
        )
    }

    @Test(arguments: [TestAuthority.shared.url, "https://attacker.example"])
    func aCounterTokenUnderACertificateTheKeyringWasNotMadeTrustingMovesNothing(url: String) throws {
        let keyring = try BrokerKeyring.generate(
            name: "https://broker.example",
            authorities: KeyBroker.pins(of: [Self.genuine.brokerAuthority])
        )
        let forged = try TestAuthority(url: url)
        let hostile = try KeyBroker(
            keyring: keyring,
            authorities: JoinProvenanceAttackTests.merged([Self.genuine.brokerAuthority, forged.brokerAuthority]),
            name: "https://broker.example"
        )
        let refused = #expect(throws: KeyBrokerError.self) {
            _ = try Self.increment(hostile, token: try Self.token(forged, broker: hostile))
        }
        #expect(refused?.code == BrokerRefusal.Code.authorityCertificateNotPinned, "\(String(describing: refused))")
        // The genuine authority's token moves the counter (control).
        let moved = try Self.increment(hostile, token: try Self.token(Self.genuine, broker: hostile))
        #expect(moved.record == BrokerCounterRecord(value: 1, state: Self.state))
    }

    /// A certificate pinned in the keyring that the broker no longer trusts moves nothing either.
    @Test func aPinnedCertificateNoLongerTrustedMovesNothing() throws {
        let other = try TestAuthority(url: "https://attacker.example")
        let keyring = try BrokerKeyring.generate(
            name: "https://broker.example",
            authorities: KeyBroker.pins(of: [Self.genuine.brokerAuthority, other.brokerAuthority])
        )
        let broker = try KeyBroker(
            keyring: keyring,
            authorities: [Self.genuine.brokerAuthority],
            name: "https://broker.example"
        )
        let refused = #expect(throws: KeyBrokerError.self) {
            _ = try Self.increment(broker, token: try Self.token(other, broker: broker))
        }
        #expect(refused?.code == BrokerRefusal.Code.untrustedIssuer, "\(String(describing: refused))")
    }
}
