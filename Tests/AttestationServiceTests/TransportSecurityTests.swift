import AttestationClient
import AttestationService
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import TestSupport
import Testing
import X509

#if canImport(Glibc)
import Glibc
#endif

/// HTTPS by default with a self-signed certificate clients can trust or pin; plain HTTP only on loopback.
@Suite("Attestation service: TLS, trust, secrets at rest")
struct TransportSecurityTests {
    static func mode(_ path: String) throws -> Int {
        try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    static func temporaryDirectory() throws -> String {
        try Fixtures.temporaryDirectory("h3")
    }

    @Test func selfSignedIdentityIsPrivateAndStable() async throws {
        let directory = try Self.temporaryDirectory() + "/data"
        // (The most permissive umask is tested in a child process: CLITests' serveAttestVerifyAndStop. umask is
        // per process, and other tests create files meanwhile.)
        let first = try TLSIdentity.selfSigned(directory: directory, hostnames: ["attest.example"])
        #expect(try Self.mode(directory) == 0o700)
        #expect(try Self.mode(directory + "/tls") == 0o700)
        #expect(try Self.mode(directory + "/tls/private-key.pem") == 0o600)
        #expect(first.fingerprint.count == 64)
        let again = try TLSIdentity.selfSigned(directory: directory)
        #expect(again.fingerprint == first.fingerprint)
        #expect(again.certificateChainPEM == first.certificateChainPEM)
    }

    /// An expired self-signed certificate is replaced on start rather than served.
    @Test func expiredSelfSignedCertificateIsReplaced() throws {
        let directory = try Self.temporaryDirectory() + "/data"
        try FileManager.default.createDirectory(atPath: directory + "/tls", withIntermediateDirectories: true)
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("expired") }
        let expired = try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: .init(key.publicKey),
            notValidBefore: Date().addingTimeInterval(-10 * 86_400),
            notValidAfter: Date().addingTimeInterval(-86_400),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: Certificate.Extensions(),
            issuerPrivateKey: .init(key)
        )
        try SecretFile.write(Array(key.pemRepresentation.utf8), to: directory + "/tls/private-key.pem")
        try SecretFile.write(
            Array(try expired.serializeAsPEM().pemString.utf8),
            to: directory + "/tls/certificate.pem",
            mode: 0o644
        )
        let renewed = try TLSIdentity.selfSigned(directory: directory)
        let leaf = try Certificate(pemEncoded: renewed.certificateChainPEM)
        #expect(leaf.notValidAfter > Date().addingTimeInterval(365 * 86_400))
        #expect(leaf.subject != name)
        #expect(try TLSIdentity.selfSigned(directory: directory).fingerprint == renewed.fingerprint)
    }

    @Test func clientTrustsTheServiceOnlyByItsCertificateOrPin() async throws {
        try await ServiceFixture.with { fixture in
            let identity = try TLSIdentity.selfSigned(directory: fixture.directory + "/tlsdata")
            let running = try await AttestationServer.start(
                core: fixture.core,
                tls: identity,
                limits: .init(headerTimeout: .seconds(30))
            )
            do {
                let url = try #require(URL(string: "https://127.0.0.1:\(running.port)"))
                try await Self.checkTrust(url: url, identity, fixture)
            } catch {
                await running.stop()
                throw error
            }
            await running.stop()
        }
    }

    /// The service at `url` serves `identity`: trusted by it or its pin, refused otherwise.
    static func checkTrust(url: URL, _ identity: TLSIdentity, _ fixture: ServiceFixture) async throws {
        let trusted = AttestationClient(endpoint: url, trust: try .certificates(pem: identity.certificateChainPEM))
        #expect(try await !trusted.challenge().nonce.isEmpty)
        let pinned = AttestationClient(endpoint: url, trust: try .pinned(sha256: identity.fingerprint))
        #expect(try await !pinned.challenge().nonce.isEmpty)

        // The system's roots do not know a self-signed certificate.
        let untrusting = AttestationClient(endpoint: url, trust: .system)
        let refused = await #expect(throws: AttestationClient.Failure.self) { try await untrusting.challenge() }
        #expect(refused?.code == "CertificateNotTrusted")
        // Another certificate's pin.
        let other = try TLSIdentity.selfSigned(directory: fixture.directory + "/other")
        let wrongPin = AttestationClient(endpoint: url, trust: try .pinned(sha256: other.fingerprint))
        let mismatch = await #expect(throws: AttestationClient.Failure.self) { try await wrongPin.challenge() }
        #expect(mismatch?.code == "CertificatePinMismatch")
        // Another CA.
        let wrongCA = AttestationClient(endpoint: url, trust: try .certificates(pem: other.certificateChainPEM))
        let untrusted = await #expect(throws: AttestationClient.Failure.self) { try await wrongCA.challenge() }
        #expect(untrusted?.code == "CertificateNotTrusted")
        // Plain HTTP to the HTTPS port gets nothing.
        let plain = AttestationClient(endpoint: try #require(URL(string: "http://127.0.0.1:\(url.port ?? 0)")))
        let plainFailure = await #expect(throws: AttestationClient.Failure.self) { try await plain.challenge() }
        #expect(plainFailure?.code == "Unreachable", "\(String(describing: plainFailure))")
    }

    /// A given certificate and key: used when they match and the key is not readable by every user.
    @Test func givenCertificateAndKeyAreChecked() throws {
        let directory = try Self.temporaryDirectory()
        let made = try TLSIdentity.selfSigned(directory: directory + "/a")
        let other = try TLSIdentity.selfSigned(directory: directory + "/b")
        let certificate = directory + "/a/tls/certificate.pem"
        let key = directory + "/a/tls/private-key.pem"
        #expect(try TLSIdentity(certificatePath: certificate, keyPath: key).fingerprint == made.fingerprint)
        let mismatch = #expect(throws: ServiceError.self) {
            try TLSIdentity(certificatePath: directory + "/b/tls/certificate.pem", keyPath: key)
        }
        #expect(mismatch?.message.contains("does not match") == true)
        _ = other
        chmod(key, 0o644)
        let exposed = #expect(throws: ServiceError.self) { try TLSIdentity(certificatePath: certificate, keyPath: key) }
        #expect(exposed?.code == "InvalidTLSIdentity")
        #expect(exposed?.message.contains("mode 0644") == true)
    }

    /// Plain HTTP on a reachable address would hand tokens and policies to anyone on the path.
    @Test func plainHTTPIsRefusedOffLoopback() async throws {
        try await ServiceFixture.with { fixture in
            let refused = await #expect(throws: ServiceError.self) {
                _ = try await AttestationServer.start(core: fixture.core, host: "0.0.0.0")
            }
            #expect(refused?.code == "InsecureTransport")
            #expect(AttestationServer.isLoopback("127.0.0.1"))
            #expect(AttestationServer.isLoopback("::1"))
            #expect(!AttestationServer.isLoopback("0.0.0.0"))
            #expect(!AttestationServer.isLoopback("127.0.0.1.example.com"))
        }
    }

    /// A data directory others may write into: they could swap the database or the TLS key. Before: accepted.
    @Test func worldWritableDataAndPlatformDirectoriesAreRefused() async throws {
        let base = try Self.temporaryDirectory()
        for name in ["data", "platform"] {
            try FileManager.default.createDirectory(atPath: base + "/" + name, withIntermediateDirectories: false)
            chmod(base + "/" + name, 0o777)
        }
        let data = await #expect(throws: EnclaveError.self) {
            _ = try await SQLiteServiceStore.open(directory: base + "/data")
        }
        #expect(data?.code == .invalidConfiguration)
        #expect(data?.reason.contains(base + "/data") == true)
        #expect(data?.reason.contains("0777") == true)
        #expect(!FileManager.default.fileExists(atPath: base + "/data/attestation.sqlite"))

        let platform = #expect(throws: EnclaveError.self) {
            _ = try SimulatedPlatform.open(directory: base + "/platform")
        }
        #expect(platform?.code == .invalidConfiguration)
        #expect(platform?.reason.contains("0777") == true)
        #expect(!FileManager.default.fileExists(atPath: base + "/platform/root-secret"))

        // The platform's key directory inside a private platform directory.
        try FileManager.default.createDirectory(atPath: base + "/platform2/pki", withIntermediateDirectories: true)
        chmod(base + "/platform2", 0o700)
        chmod(base + "/platform2/pki", 0o757)
        let pki = #expect(throws: EnclaveError.self) { _ = try SimulatedPlatform.open(directory: base + "/platform2") }
        #expect(pki?.reason.contains(base + "/platform2/pki has mode 0757") == true, "\(String(describing: pki))")

        // Group-writable too; a merely readable one is narrowed to 0700 and used.
        chmod(base + "/data", 0o770)
        let groupWritable = await #expect(throws: EnclaveError.self) {
            _ = try await SQLiteServiceStore.open(directory: base + "/data")
        }
        #expect(groupWritable?.code == .invalidConfiguration, "\(String(describing: groupWritable))")
        chmod(base + "/data", 0o755)
        let store = try await SQLiteServiceStore.open(directory: base + "/data")
        try await store.close()
        #expect(try Self.mode(base + "/data") == 0o700)
        #expect(try Self.mode(base + "/data/attestation.sqlite") == 0o600)
    }

    @Test(.enabled(if: geteuid() == 0, "changing a directory's owner needs root"))
    func directoriesOwnedByAnotherUserAreRefused() async throws {
        let base = try Self.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: base + "/data", withIntermediateDirectories: false)
        chmod(base + "/data", 0o700)
        #expect(chown(base + "/data", 65534, 65534) == 0)
        let refused = await #expect(throws: EnclaveError.self) {
            _ = try await SQLiteServiceStore.open(directory: base + "/data")
        }
        #expect(refused?.reason.contains("owned by uid 65534") == true)
    }

    @Test func secretFilesArePrivateFromTheFirstByteAndLeftoversGo() throws {
        let directory = try Self.temporaryDirectory()
        try SecretFile.write(Array("secret".utf8), to: directory + "/key")
        #expect(try Self.mode(directory + "/key") == 0o600)
        try SecretFile.write(Array("public".utf8), to: directory + "/cert", mode: 0o644)
        #expect(try Self.mode(directory + "/cert") == 0o644)
        #expect(try SecretFile.write(Array("other".utf8), to: directory + "/key", replacing: false) == false)
        #expect(FileManager.default.contents(atPath: directory + "/key") == Data("secret".utf8))

        // A writer killed mid-write (a PID that no longer runs), Foundation's old temporaries, and a live writer's.
        let dead = try #require(Self.deadPID())
        let leftovers = [".key\(SecretFile.temporaryMarker)\(dead).1f", ".blob.sealed.nosync3A2B.x1Y2z3"]
        let live = ".key\(SecretFile.temporaryMarker)1.2e"  // PID 1 runs
        for name in leftovers + [live] {
            #expect(FileManager.default.createFile(atPath: directory + "/" + name, contents: Data([1])))
        }
        let removed = SecretFile.removeLeftovers(in: directory, extraMarkers: [".nosync"])
        #expect(Set(removed) == Set(leftovers))
        #expect(FileManager.default.fileExists(atPath: directory + "/" + live))
        #expect(FileManager.default.fileExists(atPath: directory + "/key"))
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        #expect(names == [live, "cert", "key"].sorted())
    }

    /// A PID no process has now.
    static func deadPID() -> pid_t? {
        (40_000..<4_000_000).lazy.map { pid_t($0) }.first { kill($0, 0) != 0 && errno == ESRCH }
    }
}
