import AttestationAPI
import AttestationClient
import Crypto
import EnclaveCore
import Foundation
import Hummingbird
import HummingbirdTesting
import KeyReleaseFormats
import Synchronization
import TestSupport
import Testing
import X509
import _CryptoExtras

/// An attacker's review of bring-your-own-key (`KeyBrokerClient.importKey`): a fake broker that holds the private
/// part of the import key it offers tries to get an owner's key material past the client's evidence check.
@Suite("Attack review: key import to a fake broker", .serialized)
struct AttackReviewKeyImportTests {
    /// A fake broker serving `offer` at `GET /attestation` and `importKey` at `GET /importkey`, to which an owner
    /// imports a key checking the broker's evidence with `harness`'s attestation service and expectation. Answers the
    /// client's refusal code (nil: none) and how many imports reached the fake broker (the material, wrapped to a key
    /// it holds).
    static func importToFakeBroker(
        offer: KeyBrokerAttestation,
        importKey: KeyBrokerWebKey,
        harness: KeyImportClientTests.Harness
    ) async throws -> (refusal: String?, imports: Int) {
        let imports = Mutex(0)
        let router = Router()
        let offerBytes = try WireJSON.encode(offer)
        let keyBytes = try WireJSON.encode(importKey)
        router.get("attestation") { _, _ in Self.json(offerBytes) }
        router.get("importkey") { _, _ in Self.json(keyBytes) }
        router.post("keys/{name}/import") { _, _ -> Response in
            imports.withLock { $0 += 1 }
            return Response(status: .internalServerError)
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        let attestation = harness.attestation
        let expectation = harness.expectation
        let refusal = try await app.test(.live) { client -> String? in
            let port = try #require(client.port)
            let broker = KeyBrokerClient(
                endpoint: try #require(URL(string: "http://127.0.0.1:\(port)")),
                httpClient: .shared,
                adminToken: "fake"
            )
            do {
                _ = try await broker.importKey(
                    name: "owners-key",
                    material: try .aes([UInt8](repeating: 0x42, count: 32)),
                    attestation: attestation,
                    expecting: expectation
                )
                return nil
            } catch let failure as AttestationClient.Failure {
                return failure.code
            } catch {
                return "\(error)"
            }
        }
        return (refusal, imports.withLock { $0 })
    }

    static func json(_ bytes: [UInt8]) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes))
        )
    }

    /// The attacker's own RSA import key (it holds the private part).
    static func attackerImportKey() throws -> (jwk: KeyBrokerWebKey, n: String, e: String) {
        let key = try _RSA.Encryption.PrivateKey(keySize: .bits2048)
        let primitives = try key.publicKey.getKeyPrimitives()
        let n = Base64URL.encode(Array(primitives.modulus))
        let e = Base64URL.encode(Array(primitives.publicExponent))
        return (KeyBrokerWebKey(kid: "https://fake/keys/import/1", kty: "RSA-HSM", n: n, e: e), n, e)
    }

    @Test("A fake broker replaying the genuine broker's evidence with an import key of its own gets nothing")
    func genuineEvidenceWithTheAttackersImportKey() async throws {
        let harness = try await KeyImportClientTests.Harness()
        let genuine = try await harness.client.attestation()
        let attacker = try Self.attackerImportKey()
        var offer = genuine
        offer.importKey = attacker.jwk
        let replayed = try await Self.importToFakeBroker(offer: offer, importKey: attacker.jwk, harness: harness)
        #expect(replayed.refusal == KeyBrokerClient.ImportRefusal.importKeyNotBound, "\(replayed)")
        #expect(replayed.imports == 0, "the material reached the fake broker")
        // GET /attestation the genuine one, GET /importkey the attacker's: refused too.
        let split = try await Self.importToFakeBroker(offer: genuine, importKey: attacker.jwk, harness: harness)
        #expect(split.refusal == KeyBrokerClient.ImportRefusal.importKeyNotBound, "\(split)")
        #expect(split.imports == 0)
        try await harness.stop()
    }

    @Test("A debug enclave of the broker's signer, binding the attacker's import key, gets nothing")
    func debugBrokerEnclave() async throws {
        let harness = try await KeyImportClientTests.Harness()
        let genuine = try await harness.client.attestation()
        let attacker = try Self.attackerImportKey()
        let certificate = try Certificate(derEncoded: Array(try #require(Data(base64Encoded: genuine.certificate))))
        let signing = try #require(P256.Signing.PublicKey(certificate.publicKey)).rawRepresentation
        // The authorities the client expects (its attestation service), so that only the debug attribute differs.
        let thumbprint = KeyBrokerClient.thumbprint(
            try BrokerAuthorityExpectationTests.der(pem: harness.core.signer.certificatePEM)
        )
        func runtime() -> [UInt8] {
            Array(
                (#"{"authorities":[{"thumbprints":[""# + thumbprint + #""],"url":""# + harness.authority
                    + #""}],"keys":[{"e":""# + attacker.e + #"","kty":"RSA","n":""# + attacker.n
                    + #""},{"crv":"P-256","kty":"EC","x":""# + Base64URL.encode(signing.prefix(32)) + #"","y":""#
                    + Base64URL.encode(signing.suffix(32)) + #""}]}"#).utf8
            )
        }
        func offer(_ attributes: EnclaveIdentity.Attributes) throws -> KeyBrokerAttestation {
            let identity = EnclaveIdentity(
                uniqueID: try Digest32(bytes: [UInt8](repeating: 0x77, count: 32)),
                signerID: harness.signed.identity.signerID,
                productID: 70,
                securityVersion: 3,
                attributes: attributes
            )
            let quote = try harness.platform.quote(
                for: identity,
                reportData: Array(SHA256.hash(data: runtime())) + [UInt8](repeating: 0, count: 32)
            )
            let evidence = AttestationEvidence(provider: AttestationEvidence.simulatedProvider, bytes: quote)
            return KeyBrokerAttestation(
                evidence: Base64URL.encode(try WireJSON.encode(evidence)),
                runtimeData: Base64URL.encode(runtime()),
                certificate: genuine.certificate,
                importKey: attacker.jwk
            )
        }
        let debug = try await Self.importToFakeBroker(
            offer: try offer([.debug]),
            importKey: attacker.jwk,
            harness: harness
        )
        // The attestation service refuses debug evidence by default (no token); were it configured to accept it, the
        // client's own check refuses a token whose x-ms-sgx-is-debuggable is not false (BrokerIdentityMismatch).
        #expect(debug.refusal == KeyBrokerClient.ImportRefusal.evidenceRefused, "\(debug)")
        #expect(debug.imports == 0, "the material reached the debug enclave's host")
        // The same offer from a non-debug enclave of that identity passes the check (the refusal above is the
        // debug attribute's): the material is sent.
        let control = try await Self.importToFakeBroker(offer: try offer([]), importKey: attacker.jwk, harness: harness)
        #expect(control.imports == 1, "\(control)")
        try await harness.stop()
    }
}
