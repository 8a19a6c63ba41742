import AttestationAPI
import AttestationClient
import Crypto
import EnclaveCore
import Foundation
import TestSupport
import Testing
import X509
import _CryptoExtras

/// A client hands a key only to a broker enclave whose evidence names exactly the attestation authorities and
/// signing certificates it expects: a broker its host had trust a certificate of its own is refused by name before
/// any key material is sent.
@Suite("Key broker import: the broker's trusted authorities", .serialized)
struct BrokerAuthorityExpectationTests {
    typealias Harness = KeyImportClientTests.Harness
    static let refusal = KeyBrokerClient.ImportRefusal.authoritiesNotExpected

    /// A self-signed certificate (DER) standing for a host's forged authority certificate.
    static func forgedCertificate() throws -> [UInt8] {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("forged authority") }
        let privateKey = Certificate.PrivateKey(key)
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: privateKey.publicKey,
            notValidBefore: Date().addingTimeInterval(-3600),
            notValidAfter: Date().addingTimeInterval(86400),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: Certificate.Extensions {},
            issuerPrivateKey: privateKey
        )
        return try Self.der(pem: try certificate.serializeAsPEM().pemString)
    }

    /// The DER of a PEM certificate.
    static func der(pem: String) throws -> [UInt8] {
        let body = pem.components(separatedBy: "\n").filter { !$0.hasPrefix("-----") }.joined()
        return Array(try #require(Data(base64Encoded: body)))
    }

    static func importRefused(
        _ harness: Harness,
        client: KeyBrokerClient? = nil,
        _ expectation: KeyBrokerExpectation,
        mentioning text: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        await #expect(sourceLocation: sourceLocation) {
            _ = try await (client ?? harness.client).importKey(
                name: "byok-refused",
                material: try .aes([UInt8](repeating: 7, count: 32)),
                attestation: harness.attestation,
                expecting: expectation
            )
        } throws: { error in
            guard let failure = error as? AttestationClient.Failure, failure.code == Self.refusal else { return false }
            return text.map { failure.message.contains($0) } ?? true
        }
    }

    @Test("By default the broker must trust exactly the client's attestation service and its published certificates")
    func defaultExpectationIsTheAttestationService() async throws {
        let harness = try await Harness()
        let verified = try await harness.client.verifiedBroker(
            attestation: harness.attestation,
            expecting: harness.expectation
        )
        let der = try Self.der(pem: harness.core.signer.certificatePEM)
        let thumbprint = KeyBrokerClient.thumbprint(der)
        #expect(verified.authorities == [.init(url: harness.authority, thumbprints: [thumbprint])])
        // Named explicitly, the same authority passes too (URL compared normalized).
        var explicit = harness.expectation
        explicit.authorities = [.init(url: harness.authority + "/", certificates: [der])]
        _ = try await harness.client.verifiedBroker(attestation: harness.attestation, expecting: explicit)
        try await harness.stop()
    }

    @Test("An unexpected authority, another thumbprint, or a missing authority is refused by name; nothing imported")
    func unexpectedAuthoritiesAreRefused() async throws {
        let harness = try await Harness()
        let genuine = try await KeyBrokerClient.authority(of: harness.attestation)
        var otherURL = harness.expectation
        otherURL.authorities = [.init(url: "https://attest.elsewhere.example", thumbprints: genuine.thumbprints)]
        await Self.importRefused(harness, otherURL, mentioning: "not expected")
        var otherThumbprint = harness.expectation
        otherThumbprint.authorities = [.init(url: genuine.url, certificates: [try Self.forgedCertificate()])]
        await Self.importRefused(harness, otherThumbprint, mentioning: "other signing certificates")
        var extra = harness.expectation
        extra.authorities = [
            genuine, .init(url: "https://second.example", certificates: [try Self.forgedCertificate()]),
        ]
        await Self.importRefused(harness, extra, mentioning: "does not trust the expected authority")
        #expect(try await harness.imports().isEmpty)
        try await harness.stop()
    }

    @Test("A broker its host started trusting a forged certificate for the same URL is refused before the key is sent")
    func aBrokerTrustingAForgedCertificateIsRefused() async throws {
        let harness = try await Harness()
        let forged = try Self.forgedCertificate()
        let pem =
            "-----BEGIN CERTIFICATE-----\n" + Data(forged).base64EncodedString(options: [.lineLength64Characters])
            + "\n-----END CERTIFICATE-----\n"
        let forgedFile = harness.directory + "/forged.pem"
        try pem.write(toFile: forgedFile, atomically: true, encoding: .utf8)
        let data = harness.directory + "/hostile-broker"
        let hostile = try ServedProcess(
            [
                "--insecure-http", "--data-dir", data, "--authority", "\(harness.authority)=\(forgedFile)",
                "--broker-enclave", harness.signed.image,
            ],
            service: "keybroker"
        )
        defer { hostile.process.terminate() }
        let token = try String(contentsOfFile: data + "/admin-token", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let client = KeyBrokerClient(
            endpoint: try #require(URL(string: hostile.base)),
            httpClient: .shared,
            adminToken: token
        )
        // Its evidence is genuine (the right enclave, signer, product), but it names the forged certificate.
        await Self.importRefused(harness, client: client, harness.expectation, mentioning: "other signing certificates")
        #expect(try await client.audit(top: 100).value.filter { $0.operation == "import" }.isEmpty)
        try await harness.stop()
    }
}
