import Attestation
import AttestationAPI
import AttestationClient
import AttestationService
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import KeyReleaseFormats
import TestSupport
import Testing
import X509
import _CryptoExtras

/// Bring your own key with `KeyBrokerClient.importKey(name:material:…)`: the broker enclave's evidence checked by an
/// attestation service and its identity against the client's expectation before any key material leaves the client;
/// the key wrapped to the import key the evidence binds; refusals named, with nothing sent.
@Suite("Key broker import (bring your own key, client side)", .serialized)
struct KeyImportClientTests {
    /// An attestation service in this process (trusting the tests' simulated platform unless `trustPlatform` is
    /// false) and `enclave serve keybroker` trusting it, with the broker enclave signed by a fresh key.
    final class Harness {
        let directory: String
        let platform: SimulatedPlatform
        let core: AttestationServiceCore
        let server: AttestationServer.Running
        let store: SQLiteServiceStore
        let authority: String
        let broker: ServedProcess
        let client: KeyBrokerClient
        let attestation: AttestationClient
        let signed: Fixtures.Signed

        init() async throws {
            directory = try Fixtures.temporaryDirectory()
            platform = try SimulatedPlatform.open(directory: Fixtures.platformDirectory)
            var configuration = AttestationServiceCore.Configuration(issuer: "http://127.0.0.1")
            configuration.allowSimulated = true
            configuration.simulatedAnchor = try Certificate(pemEncoded: platform.rootCertificatePEM())
            let platform = self.platform
            configuration.simulatedCollateral = { time in
                try Collateral(dcapQVLJSON: platform.collateralJSON(issued: time.addingTimeInterval(-60)))
            }
            store = try await SQLiteServiceStore.open(directory: directory + "/attestation")
            core = try await AttestationServiceCore(configuration: configuration, store: store)
            server = try await AttestationServer.start(core: core)
            authority = "http://127.0.0.1:\(server.port)"
            core.useIssuer(authority)
            let certificateFile = directory + "/authority.pem"
            try core.signer.certificatePEM.write(toFile: certificateFile, atomically: true, encoding: .utf8)
            signed = try Fixtures.sign(
                "KeyBrokerEnclave",
                config: EnclaveConfig(productID: 70, securityVersion: 3),
                copyImage: true
            )
            let brokerData = directory + "/broker"
            broker = try ServedProcess(
                [
                    "--insecure-http", "--data-dir", brokerData, "--authority", "\(authority)=\(certificateFile)",
                    "--broker-enclave", signed.image,
                ],
                service: "keybroker"
            )
            let token = try String(contentsOfFile: brokerData + "/admin-token", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            client = KeyBrokerClient(
                endpoint: try #require(URL(string: broker.base)),
                httpClient: .shared,
                adminToken: token
            )
            attestation = AttestationClient(endpoint: try #require(URL(string: authority)))
        }

        var expectation: KeyBrokerExpectation {
            KeyBrokerExpectation(signerID: signed.identity.signerID, productID: 70, minimumSecurityVersion: 3)
        }

        func stop() async throws {
            broker.process.terminate()
            await server.stop()
            try await store.close()
        }

        /// The broker's audited imports.
        func imports() async throws -> [KeyBrokerAuditEntry] {
            try await client.audit(top: 100).value.filter { $0.operation == "import" }
        }

        /// A token for an enclave of `signer` (SVN 2) whose runtime data names `key`.
        func token(signer: Digest32, key: P256.KeyAgreement.PublicKey) async throws -> String {
            let identity = EnclaveIdentity(
                uniqueID: try Digest32(bytes: [UInt8](repeating: 0x11, count: 32)),
                signerID: signer,
                productID: 3,
                securityVersion: 2,
                attributes: []
            )
            let raw = key.rawRepresentation
            let jwk =
                #"{"kty":"EC","crv":"P-256","kid":"release","x":""# + Base64URL.encode(raw.prefix(32))
                + #"","y":""# + Base64URL.encode(raw.suffix(32)) + #""}"#
            let runtime = Array(#"{"keys":["#.utf8) + Array(jwk.utf8) + Array("]}".utf8)
            let evidence = try platform.quote(
                for: identity,
                reportData: Array(SHA256.hash(data: runtime)) + [UInt8](repeating: 0, count: 32)
            )
            let request = AttestationServiceCore.AttestRequest(evidence: evidence, runtimeData: (runtime, true))
            return try await core.attest(type: .simulatedEnclave, request: request)
        }
    }

    static let owner = try! Digest32(bytes: [UInt8](repeating: 0x5A, count: 32))

    static func failure(_ error: any Error, code: String) -> Bool {
        (error as? AttestationClient.Failure)?.code == code
    }

    @Test("An AES key imported after the broker's evidence checks out is released to the policy's enclave unchanged")
    func importAESThenRelease() async throws {
        let harness = try await Harness()
        let secret = Array(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
        let policy = """
            {"version":"1.0.0","anyOf":[{"authority":"\(harness.authority)","allOf":[\
            {"claim":"x-ms-sgx-mrsigner","equals":"\(Self.owner.hex)"}]}]}
            """
        let bundle = try await harness.client.importKey(
            name: "byok-aes",
            material: try .aes(secret),
            releasePolicy: KeyReleasePolicy(data: Base64URL.encode(Array(policy.utf8)), immutable: true),
            attestation: harness.attestation,
            expecting: harness.expectation
        )
        #expect(bundle.attributes.exportable == true)
        let version = String(try #require(bundle.key.kid?.split(separator: "/").last))
        let target = P256.KeyAgreement.PrivateKey()
        let jwt = try await harness.token(signer: Self.owner, key: target.publicKey)
        let jws = try await harness.client.release(
            name: "byok-aes",
            version: version,
            KeyReleaseParameters(target: jwt)
        )
        let certificateDER = Array(
            try #require(Data(base64Encoded: try await harness.client.attestation().certificate))
        )
        let certificate = try Certificate(derEncoded: certificateDER)
        let brokerKey = try #require(P256.Signing.PublicKey(certificate.publicKey))
        let verified = try await harness.client.verifiedBroker(
            attestation: harness.attestation,
            expecting: harness.expectation
        )
        #expect(verified.signingCertificate == certificateDER)
        #expect(verified.signingKey == Array(brokerKey.rawRepresentation))
        #expect(verified.claims["x-ms-sgx-mrsigner"]?.stringValue == harness.signed.identity.signerID.hex)
        let answer = try ReleaseAnswer(jws: jws, brokerKey: brokerKey)
        #expect(try answer.unwrap(with: target) == secret)
        #expect(try await harness.imports().map(\.result) == ["succeeded"])
        try await harness.stop()
    }

    @Test("RSA and EC keys from PEM keep their public part through the import")
    func importRSAAndEC() async throws {
        let harness = try await Harness()
        let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let rsaBundle = try await harness.client.importKey(
            name: "byok-rsa",
            material: try .pem(rsa.pemRepresentation),
            attestation: harness.attestation,
            expecting: harness.expectation
        )
        let primitives = try rsa.publicKey.getKeyPrimitives()
        #expect(rsaBundle.key.n == Base64URL.encode(Array(primitives.modulus.drop { $0 == 0 })))
        let ec = P384.Signing.PrivateKey()
        let ecBundle = try await harness.client.importKey(
            name: "byok-ec",
            material: try .pem(ec.pemRepresentation),
            attestation: harness.attestation,
            expecting: harness.expectation
        )
        let raw = Array(ec.publicKey.rawRepresentation)
        #expect(ecBundle.key.crv == "P-384")
        #expect(ecBundle.key.x == Base64URL.encode(raw.prefix(48)))
        #expect(ecBundle.key.y == Base64URL.encode(raw.suffix(48)))
        try await harness.stop()
    }

    @Test("A broker of another signer, product or lower SVN is refused by name before anything is sent")
    func wrongIdentityRefused() async throws {
        let harness = try await Harness()
        var expectations: [KeyBrokerExpectation] = []
        var other = harness.expectation
        other.signerID = Self.owner
        expectations.append(other)
        other = harness.expectation
        other.productID = 71
        expectations.append(other)
        other = harness.expectation
        other.minimumSecurityVersion = 4
        expectations.append(other)
        for expectation in expectations {
            await #expect {
                _ = try await harness.client.importKey(
                    name: "byok-refused",
                    material: try .aes([UInt8](repeating: 7, count: 32)),
                    attestation: harness.attestation,
                    expecting: expectation
                )
            } throws: { Self.failure($0, code: KeyBrokerClient.ImportRefusal.identityMismatch) }
        }
        #expect(try await harness.imports().isEmpty)
        try await harness.stop()
    }

    @Test("A broker whose evidence the attestation service refuses gets nothing")
    func unverifiedEvidenceRefused() async throws {
        let harness = try await Harness()
        // An attestation service that does not trust the simulated platform the broker runs on.
        var configuration = AttestationServiceCore.Configuration(issuer: "http://127.0.0.1")
        configuration.allowSimulated = true
        configuration.simulatedAnchor = try Certificate(
            pemEncoded: try SimulatedPlatform.open(directory: try Fixtures.temporaryDirectory()).rootCertificatePEM()
        )
        let store = try await SQLiteServiceStore.open(directory: try Fixtures.temporaryDirectory())
        let core = try await AttestationServiceCore(configuration: configuration, store: store)
        let server = try await AttestationServer.start(core: core)
        core.useIssuer("http://127.0.0.1:\(server.port)")
        let stranger = AttestationClient(endpoint: try #require(URL(string: "http://127.0.0.1:\(server.port)")))
        await #expect {
            _ = try await harness.client.importKey(
                name: "byok-refused",
                material: try .aes([UInt8](repeating: 7, count: 32)),
                attestation: stranger,
                expecting: harness.expectation
            )
        } throws: { Self.failure($0, code: KeyBrokerClient.ImportRefusal.evidenceRefused) }
        #expect(try await harness.imports().isEmpty)
        await server.stop()
        try await store.close()
        try await harness.stop()
    }

    @Test("Key material of the wrong size or kind is refused by name")
    func badMaterial() throws {
        for count in [0, 16, 31, 33, 64] {
            expectEnclaveError(.malformedInput) { try KeyImportMaterial.aes([UInt8](repeating: 1, count: count)) }
        }
        expectEnclaveError(.malformedInput) { try KeyImportMaterial.pem("not a key") }
        // 32 bytes are an AES key whatever they start with; other sizes must be PEM or JWK.
        let braced = Array("{".utf8) + [UInt8](repeating: 9, count: 31)
        #expect(try KeyImportMaterial.file(braced).kty == "oct-HSM")
        #expect(
            try KeyImportMaterial.file(Array(" -----BEGIN".utf8) + [UInt8](repeating: 1, count: 21)).kty == "oct-HSM"
        )
        expectEnclaveError(.malformedInput) { try KeyImportMaterial.file([UInt8](repeating: 1, count: 48)) }
        expectEnclaveError(.malformedInput) { try KeyImportMaterial.file(braced, kty: "EC") }
        let jwk = #"{"kty":"EC","crv":"P-256","d":""# + Base64URL.encode([UInt8](repeating: 3, count: 32)) + #""}"#
        #expect(try KeyImportMaterial.file(Array(jwk.utf8), kty: "ec").curve == "P-256")
        let publicOnly = #"{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}"#
        expectEnclaveError(.malformedInput) { try KeyImportMaterial.jwk(Array(publicOnly.utf8)) }
        let small = try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: 1024))
        expectEnclaveError(.malformedInput) { try KeyImportMaterial.pem(small.pemRepresentation) }
        expectEnclaveError(.malformedInput) { try KeyImportMaterial.rsa(small) }
    }
}
