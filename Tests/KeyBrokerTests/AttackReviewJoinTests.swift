import AttestationAPI
import Crypto
import EnclaveCore
import Foundation
import KeyBroker
import KeyBrokerInterface
import KeyReleaseFormats
import Testing

/// An attacker's review of replica join (`POST /replicas/join`): newcomers that must not get the keyring, a grant
/// replayed to another newcomer, and a grant made by someone who is not a broker enclave.
@Suite("Attack review: key broker replica join")
struct AttackReviewJoinTests {
    static let authority = TestAuthority.shared
    static let granter = KeyBroker.ReplicaIdentity(
        signerID: TestKeys.signer,
        productID: 1,
        securityVersion: 3,
        debug: false
    )

    /// A newcomer's ephemeral key, its JWK text and the claims of a token binding it.
    static func newcomer() throws -> (key: P256.KeyAgreement.PrivateKey, jwk: String, claims: [String: TokenValue]) {
        let key = P256.KeyAgreement.PrivateKey()
        let wrap = WrapJWK(p256: key.publicKey, kid: "join")
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let jwk = String(decoding: try encoder.encode(wrap), as: UTF8.self)
        return (key, jwk, authority.claims(keys: [TestKeys.jwk(wrap)]))
    }

    static func grant(_ claims: [String: TokenValue], key jwk: String) throws -> BrokerJoinGrantResponse {
        try KeyReleaseTests.broker.grantJoin(
            BrokerJoinGrantRequest(token: try authority.token(claims), key: jwk),
            granter: granter,
            now: Date()
        )
    }

    @Test("A debug, lower-SVN, other-product or other-signer newcomer, or a key the token does not bind, gets nothing")
    func ineligibleNewcomersAreRefused() throws {
        let newcomer = try Self.newcomer()
        // The eligible newcomer is granted (control).
        let granted = try Self.grant(newcomer.claims, key: newcomer.jwk)
        #expect(!granted.grant.isEmpty)
        let attacks: [(String, [String: TokenValue], String)] = [
            ("debug", newcomer.claims.merging(["x-ms-sgx-is-debuggable": .bool(true)]) { $1 }, "debug"),
            ("lower SVN", newcomer.claims.merging(["x-ms-sgx-svn": .integer(2)]) { $1 }, "security version"),
            ("other product", newcomer.claims.merging(["x-ms-sgx-product-id": .integer(2)]) { $1 }, "product"),
            (
                "other signer",
                newcomer.claims.merging(["x-ms-sgx-mrsigner": .string(String(repeating: "66", count: 32))]) { $1 },
                "signer"
            ),
            ("no debug claim", newcomer.claims.filter { $0.key != "x-ms-sgx-is-debuggable" }, "debug"),
            ("svn as text", newcomer.claims.merging(["x-ms-sgx-svn": .string("9")]) { $1 }, "security version"),
        ]
        for (name, claims, reason) in attacks {
            let refused = #expect(throws: KeyBrokerError.self, "\(name)") {
                _ = try Self.grant(claims, key: newcomer.jwk)
            }
            #expect(refused?.code == BrokerRefusal.Code.joinRefused, "\(name): \(String(describing: refused))")
            #expect(refused?.reason.contains(reason) == true, "\(name): \(String(describing: refused))")
        }
        // A genuine newcomer's token presented with another key (the attacker's): the evidence does not bind it.
        let attacker = try Self.newcomer()
        let unbound = #expect(throws: KeyBrokerError.self) { _ = try Self.grant(newcomer.claims, key: attacker.jwk) }
        #expect(unbound?.code == BrokerRefusal.Code.joinRefused)
        #expect(unbound?.reason.contains("does not bind") == true, "\(String(describing: unbound))")
    }

    @Test("A grant made for one newcomer does not open for another")
    func aGrantReplayedToAnotherNewcomerDoesNotOpen() throws {
        let first = try Self.newcomer()
        let second = try Self.newcomer()
        let granted = try Self.grant(first.claims, key: first.jwk)
        let keyring = try KeyBroker.completeJoin(grant: granted.grant, with: first.key)
        #expect(keyring.bytes == KeyReleaseTests.broker.keyring.bytes)
        let refused = #expect(throws: KeyBrokerError.self) {
            _ = try KeyBroker.completeJoin(grant: granted.grant, with: second.key)
        }
        #expect(refused?.code == KeyBrokerError.keyringInvalid, "\(String(describing: refused))")
    }

    /// HOLE: the grant is ECDH-ES to the newcomer's public key, so anyone can make one; `completeJoin` checks only
    /// that it decrypts and is a keyring. The host of a newcomer can answer its join itself with a keyring it
    /// generated: a genuine broker enclave then attests an import key and a signing key the host knows (owners'
    /// imported keys and the clean rooms' counter answers are then the host's). The database's keyring ID check at
    /// start does not stop it (the host writes that database). Fix: the granter's grant must be authenticated as a
    /// genuine broker enclave's (e.g. the granter attests binding a key that signs the grant, checked by the newcomer
    /// enclave against the same identity rules), or the newcomer pinned to the keyring's import key.
    @Test(
        "A grant made by someone who is not a broker enclave is refused by the newcomer",
        .disabled("HOLE: KeyBroker.completeJoin accepts any keyring encrypted to the newcomer's public key")
    )
    func aGrantFromAFakeGranterIsRefused() throws {
        let newcomer = try Self.newcomer()
        let fake = try BrokerKeyring.generate(name: "https://broker.example")
        let grant = try ECDHESJWE.encrypt(
            fake.bytes,
            to: try WrapJWK(p256: newcomer.key.publicKey).wrapTarget(),
            contentType: KeyBroker.keyringContentType
        )
        let refused = #expect(throws: KeyBrokerError.self) {
            _ = try KeyBroker.completeJoin(grant: grant, with: newcomer.key)
        }
        #expect(refused != nil, "the newcomer adopted a keyring the attacker made")
    }
}
