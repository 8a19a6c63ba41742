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

    /// The newcomer enclave's own identity (the granter's signer and product, not debug).
    static let newcomerIdentity = KeyBroker.ReplicaIdentity(
        signerID: TestKeys.signer,
        productID: 1,
        securityVersion: 3,
        debug: false
    )

    /// Claims of the granter enclave's token: a genuine broker enclave (the newcomer's signer and product) whose
    /// `x-ms-runtime` is the grant's runtime data.
    static func granterClaims(_ granted: BrokerJoinGrantResponse) throws -> [String: TokenValue] {
        let runtime = try JSONDecoder().decode(TokenValue.self, from: Data(granted.runtimeData))
        return authority.claims(keys: []).merging(["x-ms-runtime": runtime]) { $1 }
    }

    /// `completeJoin` as the newcomer enclave runs it, pinning the test authority.
    static func complete(
        _ grant: String,
        token: String,
        key: P256.KeyAgreement.PrivateKey,
        authorities: [BrokerAuthority] = [authority.brokerAuthority]
    ) throws -> BrokerKeyring {
        try KeyBroker.completeJoin(
            grant: grant,
            granterToken: token,
            with: key,
            authorities: authorities,
            newcomer: newcomerIdentity,
            now: Date()
        )
    }

    /// Expects `body` to be refused `JoinRefused` with a reason about the granter mentioning `text`.
    static func expectGranterRefused(
        _ name: String,
        mentioning text: String,
        sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () throws -> BrokerKeyring
    ) {
        let refused = #expect(throws: KeyBrokerError.self, "\(name)", sourceLocation: sourceLocation) {
            _ = try body()
        }
        #expect(
            refused?.code == BrokerRefusal.Code.joinRefused,
            "\(name): \(String(describing: refused))",
            sourceLocation: sourceLocation
        )
        #expect(
            refused?.reason.hasPrefix("granter: ") == true && refused?.reason.contains(text) == true,
            "\(name): \(String(describing: refused))",
            sourceLocation: sourceLocation
        )
    }

    @Test("A genuine granter's grant with its token opens for the newcomer it was made for (control)")
    func aGenuineGrantOpens() throws {
        let newcomer = try Self.newcomer()
        let granted = try Self.grant(newcomer.claims, key: newcomer.jwk)
        let token = try Self.authority.token(try Self.granterClaims(granted))
        let keyring = try Self.complete(granted.grant, token: token, key: newcomer.key)
        #expect(keyring.bytes == KeyReleaseTests.broker.keyring.bytes)
        #expect(KeyBroker.keyringIdentity(keyring) == KeyBroker.keyringIdentity(KeyReleaseTests.broker.keyring))
    }

    @Test("A grant made for one newcomer does not open for another")
    func aGrantReplayedToAnotherNewcomerDoesNotOpen() throws {
        let first = try Self.newcomer()
        let second = try Self.newcomer()
        let granted = try Self.grant(first.claims, key: first.jwk)
        let token = try Self.authority.token(try Self.granterClaims(granted))
        let keyring = try Self.complete(granted.grant, token: token, key: first.key)
        #expect(keyring.bytes == KeyReleaseTests.broker.keyring.bytes)
        // The grant and its token replayed to another newcomer: the token binds the first newcomer's key.
        Self.expectGranterRefused("replayed", mentioning: "does not bind this newcomer's key") {
            try Self.complete(granted.grant, token: token, key: second.key)
        }
    }

    @Test("A grant whose granter token binds another newcomer's key is refused")
    func aTokenBindingAnotherNewcomerIsRefused() throws {
        let newcomer = try Self.newcomer()
        let other = try Self.newcomer()
        // A genuine grant made for the other newcomer: its token binds the other key.
        let otherGrant = try Self.grant(other.claims, key: other.jwk)
        let otherToken = try Self.authority.token(try Self.granterClaims(otherGrant))
        // The host re-encrypts nothing it can't: it pairs this newcomer's genuine grant with the other's token.
        let granted = try Self.grant(newcomer.claims, key: newcomer.jwk)
        Self.expectGranterRefused("token of another newcomer", mentioning: "does not bind this newcomer's key") {
            try Self.complete(granted.grant, token: otherToken, key: newcomer.key)
        }
    }

    @Test("A grant from a debug, other-signer or other-product granter, or evidence that is no grant's, is refused")
    func ineligibleGrantersAreRefused() throws {
        let newcomer = try Self.newcomer()
        let granted = try Self.grant(newcomer.claims, key: newcomer.jwk)
        let claims = try Self.granterClaims(granted)
        let attacks: [(String, [String: TokenValue], String)] = [
            ("debug granter", claims.merging(["x-ms-sgx-is-debuggable": .bool(true)]) { $1 }, "debug"),
            ("no debug claim", claims.filter { $0.key != "x-ms-sgx-is-debuggable" }, "debug"),
            (
                "other signer",
                claims.merging(["x-ms-sgx-mrsigner": .string(String(repeating: "66", count: 32))]) { $1 },
                "signer"
            ),
            ("other product", claims.merging(["x-ms-sgx-product-id": .integer(2)]) { $1 }, "product"),
            (
                "broker evidence that is no grant's",
                claims.merging(["x-ms-runtime": .object(["broker": .string("https://b"), "keys": .array([])])]) {
                    $1
                },
                "not a join grant"
            ),
            ("expired", claims.merging(["exp": .integer(Int(Date().timeIntervalSince1970) - 3600)]) { $1 }, "verify"),
        ]
        for (name, attack, reason) in attacks {
            let token = try Self.authority.token(attack)
            Self.expectGranterRefused(name, mentioning: reason) {
                try Self.complete(granted.grant, token: token, key: newcomer.key)
            }
        }
        // A token from an authority the newcomer does not pin, and no pinned authority at all.
        let untrusted = try TestAuthority.other.token(claims.merging(["iss": .string(TestAuthority.other.url)]) { $1 })
        Self.expectGranterRefused("untrusted authority", mentioning: "does not verify") {
            try Self.complete(granted.grant, token: untrusted, key: newcomer.key)
        }
        let genuine = try Self.authority.token(claims)
        Self.expectGranterRefused("no authorities", mentioning: "no authority") {
            try Self.complete(granted.grant, token: genuine, key: newcomer.key, authorities: [])
        }
    }

    /// Was a HOLE (review 6, finding B: `completeJoin` checked the granter's signer, product and debug flag but not its
    /// security version). An attacker keeps an old, flawed build of the broker (same signer and product, security
    /// version 0) running on a keyring whose keys it knows, and has it grant that keyring to a fixed broker (security
    /// version 5): owners then verify the fixed broker and import their keys under the attacker's keyring. The
    /// newcomer now takes a keyring only from a granter at a security version at least its own.
    @Test("A grant from a granter at a lower security version than the newcomer's is refused by the newcomer")
    func aGrantFromAnOlderGranterIsRefused() throws {
        let newcomer = try Self.newcomer()
        let fixed = KeyBroker.ReplicaIdentity(signerID: TestKeys.signer, productID: 1, securityVersion: 5, debug: false)
        // The flawed build's keyring: the attacker read it out of the old enclave, so it knows every key.
        let planted = try BrokerKeyring.generate(
            name: "https://broker.example",
            authorities: KeyBroker.pins(of: [Self.authority.brokerAuthority])
        )
        let old = try KeyBroker(keyring: planted, authorities: [Self.authority.brokerAuthority], name: "https://b")
        let newcomerClaims = newcomer.claims.merging(["x-ms-sgx-svn": .integer(5)]) { $1 }
        // The old build grants (5 ≥ 0): the granter's side is satisfied.
        let granted = try old.grantJoin(
            BrokerJoinGrantRequest(token: try Self.authority.token(newcomerClaims), key: newcomer.jwk),
            granter: KeyBroker.ReplicaIdentity(
                signerID: TestKeys.signer,
                productID: 1,
                securityVersion: 0,
                debug: false
            ),
            now: Date()
        )
        func complete(_ claims: [String: TokenValue]) throws -> BrokerKeyring {
            try KeyBroker.completeJoin(
                grant: granted.grant,
                granterToken: try Self.authority.token(claims),
                with: newcomer.key,
                authorities: [Self.authority.brokerAuthority],
                newcomer: fixed,
                now: Date()
            )
        }
        let claims = try Self.granterClaims(granted)
        let attacks: [(String, [String: TokenValue])] = [
            ("svn 0", claims.merging(["x-ms-sgx-svn": .integer(0)]) { $1 }),
            ("svn 4", claims.merging(["x-ms-sgx-svn": .integer(4)]) { $1 }),
            ("no svn claim", claims.filter { $0.key != "x-ms-sgx-svn" }),
            ("svn as text", claims.merging(["x-ms-sgx-svn": .string("9")]) { $1 }),
        ]
        for (name, attack) in attacks {
            Self.expectGranterRefused(name, mentioning: "security version") { try complete(attack) }
        }
        // The reason names both versions, so an operator sees why (an upgrade joins from an upgraded replica).
        let refused = #expect(throws: KeyBrokerError.self) { _ = try complete(attacks[0].1) }
        #expect(
            refused?.reason.contains("security version (0) is lower than this enclave's (5)") == true,
            "\(String(describing: refused))"
        )
        // A granter at the newcomer's own security version or above is taken (control).
        for svn in [5, 6] {
            let keyring = try complete(claims.merging(["x-ms-sgx-svn": .integer(svn)]) { $1 })
            #expect(keyring.bytes == planted.bytes, "svn \(svn)")
        }
    }

    /// Was a HOLE (the grant is ECDH-ES to the newcomer's public key, so anyone can make one, and `completeJoin`
    /// checked only that it decrypts and is a keyring: the newcomer's host could answer its join with a keyring it
    /// made, and a genuine broker enclave then attested keys the host knows). Now the newcomer enclave takes a keyring
    /// only with a granter token of its own signer and product binding its key and that keyring's public identity.
    @Test("A grant made by someone who is not a broker enclave is refused by the newcomer")
    func aGrantFromAFakeGranterIsRefused() throws {
        let newcomer = try Self.newcomer()
        let fake = try BrokerKeyring.generate(name: "https://broker.example")
        let grant = try ECDHESJWE.encrypt(
            fake.bytes,
            to: try WrapJWK(p256: newcomer.key.publicKey).wrapTarget(),
            contentType: KeyBroker.keyringContentType
        )
        // No token, garbage, or a token of the host's own making.
        let forged = try TestAuthority(url: Self.authority.url)
        let fakeRuntime = TokenValue.object([
            "purpose": .string(KeyBroker.joinGrantPurpose),
            "newcomer": .object([
                "kty": .string("EC"), "crv": .string("P-256"),
                "x": .string(WrapJWK(p256: newcomer.key.publicKey).x ?? ""),
                "y": .string(WrapJWK(p256: newcomer.key.publicKey).y ?? ""),
            ]),
            "keyring": .string(KeyBroker.keyringIdentity(fake)),
        ])
        let forgedToken = try forged.token(
            Self.authority.claims(keys: []).merging(["x-ms-runtime": fakeRuntime]) { $1 }
        )
        for (name, token) in [("no token", ""), ("garbage", "a.b.c"), ("forged signature", forgedToken)] {
            Self.expectGranterRefused(name, mentioning: "does not verify") {
                try Self.complete(grant, token: token, key: newcomer.key)
            }
        }
        // A genuine granter's token for this very newcomer (the host asked a real replica too), beside the host's
        // keyring: the token binds the genuine keyring's identity, not the fake one's.
        let granted = try Self.grant(newcomer.claims, key: newcomer.jwk)
        let genuine = try Self.authority.token(try Self.granterClaims(granted))
        Self.expectGranterRefused("fake keyring, genuine token", mentioning: "not the one its evidence binds") {
            try Self.complete(grant, token: genuine, key: newcomer.key)
        }
    }
}
