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

/// The real broker enclave behind `enclave serve keybroker` (a separate process, as an operator runs it), an
/// attestation service in this process, tokens for simulated enclave identities: release to the right signer,
/// refusal (audited) of another, and no key bytes in the broker host's memory or database.
@Suite("Key broker end to end (real broker enclave)", .serialized)
struct KeyBrokerEndToEndTests {
    static let rightSigner = try! Digest32(bytes: [UInt8](repeating: 0x5A, count: 32))
    static let wrongSigner = try! Digest32(bytes: [UInt8](repeating: 0x66, count: 32))

    static func identity(signer: Digest32, svn: UInt16) throws -> EnclaveIdentity {
        EnclaveIdentity(
            uniqueID: try Digest32(bytes: [UInt8](repeating: 0x11, count: 32)),
            signerID: signer,
            productID: 3,
            securityVersion: svn,
            attributes: []
        )
    }

    /// A token for an enclave of `identity` whose runtime data names `key` in `keys`.
    static func token(
        core: AttestationServiceCore,
        platform: SimulatedPlatform,
        identity: EnclaveIdentity,
        key: P256.KeyAgreement.PublicKey
    ) async throws -> String {
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

    /// Every writable (and readable) region of process `pid`'s memory searched for `needle`.
    static func memoryContains(pid: Int32, _ needle: [UInt8]) throws -> Bool {
        let maps = try String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)
        let memory = try #require(FileHandle(forReadingAtPath: "/proc/\(pid)/mem"))
        defer { try? memory.close() }
        var scanned = 0
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            // Writable regions: heap, stacks, anonymous maps, data segments — wherever a process can put bytes it
            // received or computed (read-only mappings are files from disk: code and constants).
            guard fields.count >= 2, fields[1].hasPrefix("rw") else { continue }
            if fields.count >= 6, fields[5] == "[vvar]" || fields[5] == "[vsyscall]" { continue }
            let range = fields[0].split(separator: "-")
            guard range.count == 2, let start = UInt64(range[0], radix: 16), let end = UInt64(range[1], radix: 16)
            else { continue }
            var offset = start
            while offset < end {
                let size = Int(min(end - offset, 16 << 20))
                guard (try? memory.seek(toOffset: offset)) != nil,
                    let data = try? memory.read(upToCount: size), !data.isEmpty
                else { break }
                scanned += data.count
                if Array(data).contains(subsequence: needle) { return true }
                offset += UInt64(data.count)
            }
        }
        #expect(scanned > 1 << 20, "the scan read only \(scanned) bytes of the broker's memory")
        return false
    }

    @Test("Release to the policy's signer, refusal of another (audited), no key bytes in the host or the database")
    func releaseRefusalAndScan() async throws {
        let directory = try Fixtures.temporaryDirectory()
        let platform = try SimulatedPlatform.open(directory: Fixtures.platformDirectory)
        // The attestation service, in this process, on loopback.
        var configuration = AttestationServiceCore.Configuration(issuer: "http://127.0.0.1")
        configuration.allowSimulated = true
        configuration.simulatedAnchor = try Certificate(pemEncoded: platform.rootCertificatePEM())
        configuration.simulatedCollateral = { time in
            try Collateral(dcapQVLJSON: platform.collateralJSON(issued: time.addingTimeInterval(-60)))
        }
        let attestationStore = try await SQLiteServiceStore.open(directory: directory + "/attestation")
        let core = try await AttestationServiceCore(configuration: configuration, store: attestationStore)
        let attestation = try await AttestationServer.start(core: core)
        let authority = "http://127.0.0.1:\(attestation.port)"
        core.useIssuer(authority)
        let certificateFile = directory + "/authority.pem"
        try core.signer.certificatePEM.write(toFile: certificateFile, atomically: true, encoding: .utf8)

        // The broker: `enclave serve keybroker` with the signed broker enclave.
        let signed = try Fixtures.sign(
            "KeyBrokerEnclave",
            config: EnclaveConfig(productID: 70, securityVersion: 1),
            copyImage: true
        )
        let brokerData = directory + "/broker"
        let broker = try ServedProcess(
            [
                "--insecure-http", "--data-dir", brokerData, "--authority", "\(authority)=\(certificateFile)",
                "--broker-enclave", signed.image,
            ],
            service: "keybroker"
        )
        defer { broker.process.terminate() }
        let token = try String(contentsOfFile: brokerData + "/admin-token", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let client = KeyBrokerClient(
            endpoint: try #require(URL(string: broker.base)),
            httpClient: .shared,
            adminToken: token
        )

        // The owner imports a known AES-256 key, wrapped to the broker enclave's import key.
        let secret = Array(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
        let importKey = try await client.importKey()
        let rsa = try _RSA.Encryption.PublicKey(
            n: try #require(importKey.n.flatMap { Base64URL.decode($0) }),
            e: try #require(importKey.e.flatMap { Base64URL.decode($0) })
        )
        let policy = """
            {"version":"1.0.0","anyOf":[{"authority":"\(authority)","allOf":[\
            {"claim":"x-ms-sgx-mrsigner","equals":"\(Self.rightSigner.hex)"},\
            {"claim":"x-ms-sgx-svn","greaterOrEquals":2}]}]}
            """
        let releasePolicy = KeyReleasePolicy(data: Base64URL.encode(Array(policy.utf8)), immutable: true)
        let wrapped = try OwnerImportIntent.wrapped(
            secret,
            name: "owner-data",
            policy: releasePolicy,
            to: rsa,
            authority: authority,
            certificateFile: certificateFile
        )
        let bundle = try await client.importKey(
            name: "owner-data",
            KeyImportParameters(
                key: KeyBrokerWebKey(kty: "oct-HSM", keyHSM: Base64URL.encode(wrapped)),
                attributes: KeyAttributes(exportable: true),
                releasePolicy: releasePolicy
            )
        )
        let version = String(try #require(bundle.key.kid?.split(separator: "/").last))
        let brokerCertificate = try Certificate(
            derEncoded: Array(try #require(Data(base64Encoded: try await client.attestation().certificate)))
        )
        let brokerKey = try #require(P256.Signing.PublicKey(brokerCertificate.publicKey))

        // The right enclave (signer, SVN 2): released, and the key unwraps to the owner's bytes.
        for _ in 0..<3 {
            let target = P256.KeyAgreement.PrivateKey()
            let jwt = try await Self.token(
                core: core,
                platform: platform,
                identity: try Self.identity(signer: Self.rightSigner, svn: 2),
                key: target.publicKey
            )
            let jws = try await client.release(name: "owner-data", version: version, KeyReleaseParameters(target: jwt))
            let answer = try ReleaseAnswer(jws: jws, brokerKey: brokerKey)
            #expect(try answer.unwrap(with: target) == secret)
        }
        // Another signer, and the right signer below the minimum SVN: refused by name.
        for identity in [
            try Self.identity(signer: Self.wrongSigner, svn: 2), try Self.identity(signer: Self.rightSigner, svn: 1),
        ] {
            let jwt = try await Self.token(
                core: core,
                platform: platform,
                identity: identity,
                key: P256.KeyAgreement.PrivateKey().publicKey
            )
            await #expect {
                _ = try await client.release(name: "owner-data", version: version, KeyReleaseParameters(target: jwt))
            } throws: { error in
                let failure = error as? AttestationClient.Failure
                return failure?.status == 403 && failure?.code == "PolicyNotSatisfied"
            }
        }
        let audit = try await client.audit(top: 20).value
        let releases = audit.filter { $0.operation == "release" }
        #expect(releases.map(\.result) == ["refused", "refused", "granted", "granted", "granted"])
        #expect(releases[1].claims?.contains(Self.wrongSigner.hex) == true, "\(releases[1])")
        #expect(releases.allSatisfy { $0.issuer == authority && $0.jti?.isEmpty == false })

        // Nothing of the key in the broker host's memory, nor in its database files.
        #expect(try !Self.memoryContains(pid: broker.process.processIdentifier, secret))
        for file in ["keybroker.sqlite", "keybroker.sqlite-wal"] {
            let bytes = FileManager.default.contents(atPath: brokerData + "/" + file).map { Array($0) } ?? []
            #expect(!bytes.contains(subsequence: secret), "\(file) holds the key")
        }
        // The scan finds what is there: the key's name, which the broker host did handle.
        #expect(try Self.memoryContains(pid: broker.process.processIdentifier, Array("owner-data".utf8)))

        broker.process.terminate()
        await attestation.stop()
        try await attestationStore.close()
    }
}
