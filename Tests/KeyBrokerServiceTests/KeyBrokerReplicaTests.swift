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

/// Replicas (issue 12 item 6): two `enclave serve keybroker` processes with the real broker enclave, each on its own
/// simulated platform (two platform directories), one PostgreSQL database. Instance A makes the keyring and the keys;
/// B, whose database already has a keyring, refuses to start without `--join`, and joins only when its enclave
/// attests with A's signer and product and a security version at least A's, and A's evidence shows a security
/// version at least B's (both at one version); then B releases A's keys with the same key material. `.ci/run` starts
/// a private PostgreSQL cluster and sets `ENCLAVEKIT_TEST_POSTGRES_URL` (`Scripts/test-postgres.sh` does the same by
/// hand).
@Suite(
    "KeyBrokerReplica: two broker instances, two simulated platforms, one PostgreSQL",
    .serialized,
    .enabled(
        if: ProcessInfo.processInfo.environment["ENCLAVEKIT_TEST_POSTGRES_URL"] != nil,
        "needs a PostgreSQL server: set ENCLAVEKIT_TEST_POSTGRES_URL (.ci/run and Scripts/test-postgres.sh start one)"
    )
)
struct KeyBrokerReplicaTests {
    static let targetSigner = try! Digest32(bytes: [UInt8](repeating: 0x5A, count: 32))

    /// The enclave a key is released to (its evidence made on `platform`, which the attestation service trusts).
    static func releaseToken(
        core: AttestationServiceCore,
        platform: SimulatedPlatform,
        key: P256.KeyAgreement.PublicKey
    ) async throws -> String {
        let identity = EnclaveIdentity(
            uniqueID: try Digest32(bytes: [UInt8](repeating: 0x11, count: 32)),
            signerID: targetSigner,
            productID: 3,
            securityVersion: 2,
            attributes: []
        )
        let raw = key.rawRepresentation
        let jwk =
            #"{"kty":"EC","crv":"P-256","kid":"release","x":""# + Base64URL.encode(raw.prefix(32)) + #"","y":""#
            + Base64URL.encode(raw.suffix(32)) + #""}"#
        let runtime = Array(#"{"keys":["#.utf8) + Array(jwk.utf8) + Array("]}".utf8)
        let evidence = try platform.quote(
            for: identity,
            reportData: Array(SHA256.hash(data: runtime)) + [UInt8](repeating: 0, count: 32)
        )
        let request = AttestationServiceCore.AttestRequest(evidence: evidence, runtimeData: (runtime, true))
        return try await core.attest(type: .simulatedEnclave, request: request)
    }

    /// Release `name`/`version` through `client` to a fresh target key; the key material the target unwraps, checked
    /// against the broker's signature.
    static func release(
        _ client: KeyBrokerClient,
        name: String,
        version: String,
        core: AttestationServiceCore,
        platform: SimulatedPlatform
    ) async throws -> [UInt8] {
        let target = P256.KeyAgreement.PrivateKey()
        let jwt = try await releaseToken(core: core, platform: platform, key: target.publicKey)
        let jws = try await client.release(name: name, version: version, KeyReleaseParameters(target: jwt))
        let certificate = try Certificate(
            derEncoded: Array(try #require(Data(base64Encoded: try await client.attestation().certificate)))
        )
        let answer = try ReleaseAnswer(jws: jws, brokerKey: try #require(P256.Signing.PublicKey(certificate.publicKey)))
        return try answer.unwrap(with: target)
    }

    static func adminToken(_ dataDirectory: String) throws -> String {
        try String(contentsOfFile: dataDirectory + "/admin-token", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A broker instance that must not start: what it printed before exiting.
    static func refusedStart(_ arguments: [String], platform: String) async -> String {
        let start = await Self.start(arguments, platform: platform)
        if let served = start.served {
            served.process.terminate()
            Issue.record("the instance started: \(served.output)")
        }
        return start.output
    }

    /// A broker instance that must start (on `platform`), started off the cooperative pool: its start blocks
    /// reading the log while it may call the attestation service in this process, whose handlers need the pool.
    static func served(_ arguments: [String], platform: String) async throws -> ServedProcess {
        let start = await Self.start(arguments, platform: platform)
        return try #require(start.served, "the instance did not start: \(start.output)")
    }

    /// Terminate `served` and wait (without blocking a thread) until it exited.
    static func stop(_ served: ServedProcess) async throws {
        served.process.terminate()
        let deadline = Date().addingTimeInterval(30)
        while served.process.isRunning, Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!served.process.isRunning)
    }

    /// `body` on a thread of its own (a blocking child-process wait, off the cooperative pool).
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }

    @Test("A makes the keys; B joins attested via A and serves them; another signer or a lower SVN is refused")
    func joinAttestedAndServeTheSameKeys() async throws {
        let directory = try Fixtures.temporaryDirectory()
        let database = try await PostgresKeyBrokerStoreTests.scratchDatabase()
        let (platformA, platformB) = try Self.platforms(in: directory)
        #expect(platformA.directory != platformB.directory)
        #expect(try platformA.rootCertificatePEM() == platformB.rootCertificatePEM())

        // The attestation service, in this process: it trusts the simulated root of both platforms; the newcomers,
        // the release targets and (for the join) A's granting enclave are attested by it.
        let service = try await Self.attestationService(trusting: platformB, directory: directory)
        let core = service.core
        let authority = service.authority
        let certificateFile = service.certificateFile

        // The broker enclave, signed by the product's key at security version 2 (A and B).
        let signer = P256.Signing.PrivateKey()
        let signedA = try Fixtures.sign(
            "KeyBrokerEnclave",
            config: EnclaveConfig(productID: 70, securityVersion: 2),
            copyImage: true,
            key: signer
        )
        let signedB = try Fixtures.sign(
            "KeyBrokerEnclave",
            config: EnclaveConfig(productID: 70, securityVersion: 2),
            copyImage: true,
            key: signer
        )
        func arguments(_ data: String, _ image: String) -> [String] {
            [
                "--insecure-http", "--data-dir", data, "--database", database, "--authority",
                "\(authority)=\(certificateFile)", "--broker-enclave", image,
            ]
        }

        // A: the first instance on the database makes the keyring.
        let dataA = directory + "/broker-a"
        let brokerA = try await Self.served(arguments(dataA, signedA.image), platform: platformA.directory)
        defer { brokerA.process.terminate() }
        let clientA = KeyBrokerClient(
            endpoint: try #require(URL(string: brokerA.base)),
            httpClient: .shared,
            adminToken: try Self.adminToken(dataA)
        )
        // A key made in A's enclave, and a known key imported through A (wrapped to A's import key).
        let policy = """
            {"version":"1.0.0","anyOf":[{"authority":"\(authority)","allOf":[\
            {"claim":"x-ms-sgx-mrsigner","equals":"\(Self.targetSigner.hex)"}]}]}
            """
        let releasePolicy = KeyReleasePolicy(data: Base64URL.encode(Array(policy.utf8)))
        let created = try await clientA.createKey(
            name: "made-on-a",
            KeyCreateParameters(
                kty: "oct-HSM",
                keySize: 256,
                attributes: KeyAttributes(exportable: true),
                releasePolicy: releasePolicy
            )
        )
        let createdVersion = String(try #require(created.key.kid?.split(separator: "/").last))
        let secret = Array(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
        let importKey = try await clientA.importKey()
        let rsa = try _RSA.Encryption.PublicKey(
            n: try #require(importKey.n.flatMap { Base64URL.decode($0) }),
            e: try #require(importKey.e.flatMap { Base64URL.decode($0) })
        )
        let imported = try await clientA.importKey(
            name: "imported-on-a",
            KeyImportParameters(
                key: KeyBrokerWebKey(
                    kty: "oct-HSM",
                    keyHSM: Base64URL.encode(
                        try OwnerImportIntent.wrapped(
                            secret,
                            name: "imported-on-a",
                            policy: releasePolicy,
                            to: rsa,
                            authority: authority,
                            certificateFile: certificateFile
                        )
                    )
                ),
                attributes: KeyAttributes(exportable: true),
                releasePolicy: releasePolicy
            )
        )
        let importedVersion = String(try #require(imported.key.kid?.split(separator: "/").last))
        let fromA = try await Self.release(
            clientA,
            name: "made-on-a",
            version: createdVersion,
            core: core,
            platform: platformB
        )
        #expect(fromA.count == 32)

        // B without --join: the database has a keyring B can't unseal; it refuses, and makes no keyring.
        let dataNoJoin = directory + "/broker-no-join"
        let noJoin = await Self.refusedStart(arguments(dataNoJoin, signedB.image), platform: platformB.directory)
        #expect(noJoin.contains("--join"), "\(noJoin)")
        #expect(noJoin.contains("no sealed keyring"), "\(noJoin)")
        #expect(!FileManager.default.fileExists(atPath: dataNoJoin + "/keyring.sealed"))

        let join = ["--join", brokerA.base, "--join-admin-token-file", dataA + "/admin-token"]
        // A newcomer signed by another key, and one of A's signer below A's security version: refused by A's
        // enclave, by name; neither gets a keyring.
        let otherSigner = try Fixtures.sign(
            "KeyBrokerEnclave",
            config: EnclaveConfig(productID: 70, securityVersion: 3),
            copyImage: true
        )
        let lowerSVN = try Fixtures.sign(
            "KeyBrokerEnclave",
            config: EnclaveConfig(productID: 70, securityVersion: 1),
            copyImage: true,
            key: signer
        )
        for (name, signed, reason) in [
            ("other-signer", otherSigner, "signer"), ("lower-svn", lowerSVN, "security version"),
        ] {
            let data = directory + "/broker-" + name
            let output = await Self.refusedStart(
                arguments(data, signed.image) + join,
                platform: platformB.directory
            )
            #expect(output.contains("refused the join"), "\(name): \(output)")
            #expect(output.contains("JoinRefused"), "\(name): \(output)")
            #expect(output.contains(reason), "\(name): \(output)")
            #expect(!FileManager.default.fileExists(atPath: data + "/keyring.sealed"), "\(name)")
        }
        // A newcomer above A's security version: A grants (3 ≥ 2), the newcomer's own enclave refuses A's keyring
        // (review 6, finding B: an old, flawed build must not hand a fixed one a keyring its attacker knows). An
        // upgrade runs the new build on a replica's own sealed keyring instead, and newcomers join from it.
        let higherSVN = try Fixtures.sign(
            "KeyBrokerEnclave",
            config: EnclaveConfig(productID: 70, securityVersion: 3),
            copyImage: true,
            key: signer
        )
        let dataHigher = directory + "/broker-higher-svn"
        let higher = await Self.refusedStart(
            arguments(dataHigher, higherSVN.image) + join,
            platform: platformB.directory
        )
        #expect(higher.contains("JoinRefused"), "\(higher)")
        #expect(higher.contains("security version (2) is lower than this enclave's (3)"), "\(higher)")
        #expect(!FileManager.default.fileExists(atPath: dataHigher + "/keyring.sealed"))

        // B: A's signer, product and security version, on platform B: joins through A and seals the keyring.
        let dataB = directory + "/broker-b"
        var brokerB = try await Self.served(arguments(dataB, signedB.image) + join, platform: platformB.directory)
        defer { brokerB.process.terminate() }
        #expect(brokerB.output.contains("joined the running instance"), "\(brokerB.output)")
        #expect(FileManager.default.fileExists(atPath: dataB + "/keyring.sealed"))
        var clientB = KeyBrokerClient(
            endpoint: try #require(URL(string: brokerB.base)),
            httpClient: .shared,
            adminToken: try Self.adminToken(dataB)
        )
        // Same broker identity, same keys, same key material.
        #expect(try await clientB.attestation().certificate == (try await clientA.attestation().certificate))
        #expect(try await clientB.key(name: "made-on-a").key.kid?.hasSuffix(createdVersion) == true)
        let fromB = try await Self.release(
            clientB,
            name: "made-on-a",
            version: createdVersion,
            core: core,
            platform: platformB
        )
        #expect(fromB == fromA)
        let importedFromB = try await Self.release(
            clientB,
            name: "imported-on-a",
            version: importedVersion,
            core: core,
            platform: platformB
        )
        #expect(importedFromB == secret)
        // And the other way: a key made on B is released by A.
        let madeOnB = try await clientB.createKey(
            name: "made-on-b",
            KeyCreateParameters(
                kty: "oct-HSM",
                keySize: 256,
                attributes: KeyAttributes(exportable: true),
                releasePolicy: releasePolicy
            )
        )
        let madeOnBVersion = String(try #require(madeOnB.key.kid?.split(separator: "/").last))
        #expect(
            try await Self.release(clientA, name: "made-on-b", version: madeOnBVersion, core: core, platform: platformB)
                == (try await Self.release(
                    clientB,
                    name: "made-on-b",
                    version: madeOnBVersion,
                    core: core,
                    platform: platformB
                ))
        )
        // One audit log: A's join decisions are visible through B.
        let joins = try await clientB.audit(top: 100).value.filter { $0.operation == "join" }
        // (A granted the higher newcomer, which refused: A's audit shows the grant.)
        #expect(joins.map(\.result) == ["succeeded", "succeeded", "failed", "failed"], "\(joins)")
        #expect(joins.count == 4 && joins[2].reason.contains("security version") && joins[3].reason.contains("signer"))

        // B restarts without --join: its sealed keyring opens on its own platform.
        try await Self.stop(brokerB)
        brokerB = try await Self.served(arguments(dataB, signedB.image), platform: platformB.directory)
        clientB = KeyBrokerClient(
            endpoint: try #require(URL(string: brokerB.base)),
            httpClient: .shared,
            adminToken: try Self.adminToken(dataB)
        )
        #expect(
            try await Self.release(clientB, name: "made-on-a", version: createdVersion, core: core, platform: platformB)
                == fromA
        )

        brokerB.process.terminate()
        brokerA.process.terminate()
        await service.stop()
    }

    /// An attestation service in this process, on loopback, trusting `platform`'s simulated root.
    struct Service {
        let core: AttestationServiceCore
        let server: AttestationServer.Running
        let store: SQLiteServiceStore
        /// `http://127.0.0.1:PORT`, its issuer.
        let authority: String
        /// Its token signing certificate (PEM), for `--authority URL=FILE`.
        let certificateFile: String

        func stop() async {
            await server.stop()
            try? await store.close()
        }
    }

    /// Platforms A and B in `directory`: B has its own root secret (it can't unseal A's keyring) but its quotes chain
    /// to A's simulated root, as two real CPUs chain to one vendor root, so that one attestation service attests both
    /// (B's newcomer enclave checks a token of A's granting enclave).
    static func platforms(in directory: String) throws -> (SimulatedPlatform, SimulatedPlatform) {
        let platformA = try SimulatedPlatform.open(directory: directory + "/platform-a")
        _ = try platformA.rootCertificatePEM()
        try FileManager.default.createDirectory(atPath: directory + "/platform-b", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: platformA.directory + "/pki", toPath: directory + "/platform-b/pki")
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: directory + "/platform-b/pki")
        return (platformA, try SimulatedPlatform.open(directory: directory + "/platform-b"))
    }

    static func attestationService(trusting platform: SimulatedPlatform, directory: String) async throws -> Service {
        var configuration = AttestationServiceCore.Configuration(issuer: "http://127.0.0.1")
        configuration.allowSimulated = true
        configuration.simulatedAnchor = try Certificate(pemEncoded: platform.rootCertificatePEM())
        configuration.simulatedCollateral = { time in
            try Collateral(dcapQVLJSON: platform.collateralJSON(issued: time.addingTimeInterval(-60)))
        }
        let store = try await SQLiteServiceStore.open(directory: directory + "/attestation")
        let core = try await AttestationServiceCore(configuration: configuration, store: store)
        let server = try await AttestationServer.start(core: core)
        let authority = "http://127.0.0.1:\(server.port)"
        core.useIssuer(authority)
        let certificateFile = directory + "/authority.pem"
        try core.signer.certificatePEM.write(toFile: certificateFile, atomically: true, encoding: .utf8)
        return Service(core: core, server: server, store: store, authority: authority, certificateFile: certificateFile)
    }

    /// A self-signed authority certificate written to `directory/authority.pem`, for `--authority URL=FILE` where
    /// no token is verified.
    static func authorityCertificate(_ directory: String) throws -> String {
        let path = directory + "/authority.pem"
        let authorityKey = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("replica test authority") }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(authorityKey.publicKey),
            notValidBefore: Date().addingTimeInterval(-60),
            notValidAfter: Date().addingTimeInterval(3600),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: Certificate.Extensions {},
            issuerPrivateKey: .init(authorityKey)
        )
        try certificate.serializeAsPEM().pemString.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("--join and --database options refused by name when they can't work")
    func joinOptionsAreChecked() async throws {
        let database = try #require(ProcessInfo.processInfo.environment["ENCLAVEKIT_TEST_POSTGRES_URL"])
        let cases: [([String], String)] = [
            (["--join", "https://a.test:8443", "--join-admin-token-file", "/dev/null"], "give --database"),
            (["--database", database, "--join", "https://a.test:8443"], "--join-admin-token-file"),
            (
                [
                    "--database", database, "--join", "https://a.test:8443", "--join-admin-token-file", "/dev/null",
                    "--join-cert", "/dev/null", "--join-pin", String(repeating: "ab", count: 32),
                ],
                "give one"
            ),
            (["--join-pin", String(repeating: "ab", count: 32)], "go with --join"),
            (
                ["--database", database, "--join", "http://a.test:8443", "--join-admin-token-file", "/dev/null"],
                "only to a loopback address"
            ),
            (["--database", "postgres://u:secret@127.0.0.1/db"], "--database-password-file"),
            (["--database-password-file", "/dev/null"], "goes with --database"),
            (["--refusal-retention-days", "0"], "--refusal-retention-days is 1 to 36500"),
            (["--max-refusal-records", "0"], "--max-refusal-records is at least 1"),
        ]
        for (arguments, message) in cases {
            let (status, output) = try await Self.offPool {
                try ChildProcess.run(ChildProcess.cli, ["serve", "keybroker"] + arguments)
            }
            #expect(status == 64, "\(arguments): \(output)")
            #expect(output.contains(message), "\(arguments): \(output)")
        }
        // A database nobody serves: a runtime failure naming it, before any keyring is made.
        let directory = try Fixtures.temporaryDirectory()
        let certificate = try Self.authorityCertificate(directory)
        let (status, output) = try await Self.offPool {
            try ChildProcess.run(
                ChildProcess.cli,
                [
                    "serve", "keybroker", "--insecure-http", "--port", "0", "--data-dir", directory + "/broker",
                    "--database", "postgres://nobody@127.0.0.1:1/none?sslmode=disable", "--authority",
                    "http://127.0.0.1:9=" + certificate,
                ]
            )
        }
        #expect(status == 70, "\(output)")
        #expect(output.contains("cannot connect to PostgreSQL at 127.0.0.1:1"), "\(output)")
        #expect(!FileManager.default.fileExists(atPath: directory + "/broker/keyring.sealed"))
    }

    /// A `ServedProcess` started off the cooperative pool (its start blocks reading the log).
    final class Start: @unchecked Sendable {
        var served: ServedProcess?
        var output = ""
    }

    static func start(_ arguments: [String], platform: String) async -> Start {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                let start = Start()
                do {
                    start.served = try ServedProcess(
                        arguments,
                        environment: ["ENCLAVEKIT_PLATFORM_DIR": platform],
                        service: "keybroker"
                    )
                    start.output = start.served?.output ?? ""
                } catch let error as ServedProcessError {
                    start.output = error.output
                } catch {
                    start.output = "\(error)"
                }
                continuation.resume(returning: start)
            }
        }
    }

    @Test("Two first instances at once: one keyring; the other refuses and keeps none; a data dir of another database")
    func twoFirstInstancesAtOnceMakeOneKeyring() async throws {
        let directory = try Fixtures.temporaryDirectory()
        let database = try await PostgresKeyBrokerStoreTests.scratchDatabase()
        let platforms = [directory + "/platform-a", directory + "/platform-b"]
        for platform in platforms { _ = try SimulatedPlatform.open(directory: platform) }
        // An authority pinned from a file (no token is needed here: nobody joins).
        let authorityCertificate = try Self.authorityCertificate(directory)
        let signed = try Fixtures.sign(
            "KeyBrokerEnclave",
            config: EnclaveConfig(productID: 70, securityVersion: 2),
            copyImage: true
        )
        func arguments(_ data: String, _ database: String) -> [String] {
            [
                "--insecure-http", "--data-dir", data, "--database", database, "--authority",
                "http://127.0.0.1:9=\(authorityCertificate)", "--broker-enclave", signed.image,
            ]
        }
        let data = [directory + "/broker-1", directory + "/broker-2"]
        async let first = Self.start(arguments(data[0], database), platform: platforms[0])
        async let second = Self.start(arguments(data[1], database), platform: platforms[1])
        let starts = await [first, second]
        defer { for start in starts { start.served?.process.terminate() } }
        let running = starts.indices.filter { starts[$0].served != nil }
        #expect(running.count == 1, "\(starts.map(\.output))")
        let winner = try #require(running.first)
        let loser = 1 - winner
        #expect(starts[loser].output.contains("--join"), "\(starts[loser].output)")
        #expect(FileManager.default.fileExists(atPath: data[winner] + "/keyring.sealed"))
        #expect(!FileManager.default.fileExists(atPath: data[loser] + "/keyring.sealed"))

        // The winner's data directory against another database (which has a keyring of its own): refused by name.
        try await Self.stop(try #require(starts[winner].served))
        let other = try await PostgresKeyBrokerStoreTests.scratchDatabase()
        let third = directory + "/broker-3"
        let owner = await Self.start(arguments(third, other), platform: platforms[loser])
        #expect(owner.served != nil, "\(owner.output)")
        owner.served?.process.terminate()
        let mixed = await Self.start(arguments(data[winner], other), platform: platforms[winner])
        mixed.served?.process.terminate()
        #expect(mixed.served == nil)
        #expect(mixed.output.contains("belongs to another database"), "\(mixed.output)")
    }

    @Test(
        "B joins A over HTTPS, trusting A's certificate by pin or file; a wrong pin fails the handshake before the admin token is sent"
    )
    func joinOverHTTPSTrustsThePinnedInstance() async throws {
        let directory = try Fixtures.temporaryDirectory()
        let database = try await PostgresKeyBrokerStoreTests.scratchDatabase()
        let (platformA, platformB) = try Self.platforms(in: directory)
        let service = try await Self.attestationService(trusting: platformB, directory: directory)
        let signed = try Fixtures.sign(
            "KeyBrokerEnclave",
            config: EnclaveConfig(productID: 70, securityVersion: 2),
            copyImage: true
        )
        func arguments(_ data: String) -> [String] {
            [
                "--data-dir", data, "--database", database, "--authority",
                "\(service.authority)=\(service.certificateFile)", "--broker-enclave", signed.image,
            ]
        }
        // A serves HTTPS with its self-signed certificate, and prints that certificate's fingerprint.
        let dataA = directory + "/broker-a"
        let brokerA = try await Self.served(arguments(dataA), platform: platformA.directory)
        defer { brokerA.process.terminate() }
        let marker = "TLS certificate SHA-256 fingerprint: "
        let printed = try #require(brokerA.output.range(of: marker), "\(brokerA.output)")
        let pin = String(brokerA.output[printed.upperBound...].prefix { !$0.isWhitespace })
        let urlA = "https://127.0.0.1:\(brokerA.port)"
        let join = ["--join", urlA, "--join-admin-token-file", dataA + "/admin-token"]

        // A pin of another certificate: refused at the TLS handshake, no keyring.
        let wrongPin = String(repeating: "00", count: 32)
        let dataWrong = directory + "/broker-wrong-pin"
        let refused = await Self.refusedStart(
            ["--insecure-http"] + arguments(dataWrong) + join + ["--join-pin", wrongPin],
            platform: platformB.directory
        )
        #expect(refused.contains("cannot reach the running instance at \(urlA)"), "\(refused)")
        #expect(refused.contains("CertificatePinMismatch"), "\(refused)")
        #expect(!FileManager.default.fileExists(atPath: dataWrong + "/keyring.sealed"))

        // The printed pin, and A's certificate file: both join.
        for (name, trust) in [
            ("pin", ["--join-pin", pin]), ("cert", ["--join-cert", dataA + "/tls/certificate.pem"]),
        ] {
            let data = directory + "/broker-" + name
            let newcomer = try await Self.served(
                ["--insecure-http"] + arguments(data) + join + trust,
                platform: platformB.directory
            )
            #expect(newcomer.output.contains("joined the running instance"), "\(name): \(newcomer.output)")
            #expect(FileManager.default.fileExists(atPath: data + "/keyring.sealed"), "\(name)")
            newcomer.process.terminate()
        }
        brokerA.process.terminate()
        await service.stop()
    }

    @Test("SQLite: a data directory whose sealed keyring is gone refuses to start and makes no new one")
    func aLostKeyringIsNotReplaced() async throws {
        let directory = try Fixtures.temporaryDirectory()
        let platform = try SimulatedPlatform.open(directory: directory + "/platform")
        let signed = try Fixtures.sign(
            "KeyBrokerEnclave",
            config: EnclaveConfig(productID: 70, securityVersion: 2),
            copyImage: true
        )
        let data = directory + "/broker"
        let arguments = [
            "--insecure-http", "--data-dir", data, "--authority",
            "http://127.0.0.1:9=" + (try Self.authorityCertificate(directory)), "--broker-enclave", signed.image,
        ]
        let first = try await Self.served(arguments, platform: platform.directory)
        try await Self.stop(first)
        try FileManager.default.removeItem(atPath: data + "/keyring.sealed")
        let output = await Self.refusedStart(arguments, platform: platform.directory)
        #expect(output.contains("restore it from a backup"), "\(output)")
        #expect(!FileManager.default.fileExists(atPath: data + "/keyring.sealed"))
    }
}
