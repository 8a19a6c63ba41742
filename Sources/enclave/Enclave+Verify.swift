import ArgumentParser
import Attestation
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import X509

extension EnclaveCommand {
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify remote evidence and print its claims.",
            discussion: """
                SGX quotes are detected by themselves. Trust anchors default to Intel's SGX root and, for simulated \
                evidence, this machine's simulated platform root. Exits non-zero naming the failed check.
                """
        )

        @Argument(help: "The evidence file.")
        var evidence: String

        @Option(
            help: "Collateral: a directory of PCS/PCCS files, or a JSON bundle in the dcap-qvl layout."
        )
        var collateral: String?

        @Option(help: "An additional trust anchor (PEM); may repeat.")
        var trustAnchor: [String] = []

        @Option(help: "Verification time as Unix seconds (default: now).")
        var at: Int64?

        @Option(help: "Hexadecimal nonce: the report data must start with its SHA-256.")
        var nonce: String?

        @Flag(help: "Accept evidence from a simulated platform.")
        var allowSimulated = false

        @Flag(help: "Accept debug enclaves.")
        var allowDebug = false

        @Flag(help: "Print JSON.")
        var json = false

        func run() async throws {
            let bytes = try Files.read(evidence, what: "evidence")
            let time = at.map { Date(timeIntervalSince1970: TimeInterval($0)) } ?? Date()
            var anchors = [SGXQuote.TrustAnchor(certificate: IntelRoots.sgxRootCA, simulated: false)]
            if let platform = try? SimulatedPlatform.open(), let pem = try? platform.rootCertificatePEM() {
                anchors.append(.init(certificate: try Certificate(pemEncoded: pem), simulated: true))
            }
            for path in trustAnchor {
                guard let certificate = try? Certificate(pemEncoded: Files.readText(path, what: "trust anchor")) else {
                    throw ValidationError("\(path) is not a PEM certificate")
                }
                anchors.append(.init(certificate: certificate, simulated: false))
            }
            let claims: Claims
            do {
                let quote = try SGXQuote(bytes: bytes)
                if let collateral {
                    var isDirectory: ObjCBool = false
                    _ = FileManager.default.fileExists(atPath: collateral, isDirectory: &isDirectory)
                    let bundle =
                        isDirectory.boolValue
                        ? try Collateral(directory: collateral)
                        : try Collateral(dcapQVLJSON: Files.read(collateral, what: "collateral"))
                    claims = try await quote.verify(anchors: anchors, collateral: bundle, at: time)
                } else {
                    let bare = try await quote.verify(anchors: anchors, at: time)
                    if bare.simulated, let platform = try? SimulatedPlatform.open() {
                        // Simulated evidence: this machine's platform supplies the collateral.
                        let bundle = try Collateral(
                            dcapQVLJSON: platform.collateralJSON(issued: time.addingTimeInterval(-60))
                        )
                        claims = try await quote.verify(anchors: anchors, collateral: bundle, at: time)
                    } else {
                        claims = bare
                    }
                }
            } catch let failure as SGXQuote.VerificationFailure {
                throw Failure(check: failure.check.rawValue, reason: failure.reason)
            } catch {
                throw Failure(check: "parse", reason: Files.describe(error))
            }
            if claims.simulated && !allowSimulated {
                throw Failure(
                    check: "policy",
                    reason: "the evidence comes from a simulated platform (pass --allow-simulated)"
                )
            }
            if claims.debug && !allowDebug {
                throw Failure(check: "policy", reason: "the enclave is a debug enclave (pass --allow-debug)")
            }
            if let nonce {
                guard let nonceBytes = Hex.decode(nonce) else { throw ValidationError("--nonce is not hexadecimal") }
                guard Array(claims.reportData.prefix(32)) == Array(SHA256.hash(data: nonceBytes)) else {
                    throw Failure(check: "nonce", reason: "the report data does not bind the nonce")
                }
            }
            if json {
                let data = try JSONSerialization.data(
                    withJSONObject: claims.jsonObject,
                    options: [.prettyPrinted, .sortedKeys]
                )
                print(String(decoding: data, as: UTF8.self))
            } else {
                for (key, value) in claims.jsonObject.sorted(by: { $0.key < $1.key }) {
                    print("\(key): \(value)")
                }
            }
        }
    }

    /// A verification failure: printed as `verification failed at CHECK: REASON`, exit status 1.
    struct Failure: Error, CustomStringConvertible {
        var check: String
        var reason: String
        var description: String { "verification failed at \(check): \(reason)" }
    }

    struct Platform: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The simulated platform of this machine.",
            subcommands: [Info.self, Collateral.self]
        )

        struct Info: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Print the platform's identity and TCB.")

            func run() async throws {
                let platform = try SimulatedPlatform.open()
                let root = try Certificate(pemEncoded: platform.rootCertificatePEM())
                print("directory: \(platform.directory)")
                print("root CA:   \(root.subject)")
                let info = try platform.platformInfo()
                print("FMSPC:     \(Hex.encode(info.fmspc))")
                print("PCE ID:    \(Hex.encode(info.pceID))")
                print("CPUSVN:    \(Hex.encode(info.cpuSVN))")
                print("PCESVN:    \(info.pceSVN)")
                print("QESVN:     \(info.qeSVN)")
            }
        }

        struct Collateral: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Write the simulated root CA and collateral (TCB info, QE identity, CRLs) to a directory."
            )

            @Option(help: "Output directory.")
            var out: String

            func run() async throws {
                let platform = try SimulatedPlatform.open()
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                try Files.write(Array(try platform.rootCertificatePEM().utf8), to: out + "/root-ca.pem")
                let json = try platform.collateralJSON()
                try Files.write(json, to: out + "/collateral.json")
                let collateral = try Attestation.Collateral(dcapQVLJSON: json)
                typealias Layout = Attestation.Collateral.DirectoryLayout
                func signed(_ key: String, _ object: [UInt8], _ signature: [UInt8]) -> [UInt8] {
                    Array("{\"\(key)\":".utf8) + object + Array(",\"signature\":\"\(Hex.encode(signature))\"}".utf8)
                }
                func pem(_ chain: [Certificate]) throws -> [UInt8] {
                    Array(try chain.map { try $0.serializeAsPEM().pemString }.joined(separator: "\n").utf8)
                }
                try Files.write(
                    signed("tcbInfo", collateral.tcbInfoBytes, collateral.tcbInfoSignature),
                    to: out + "/" + Layout.tcbInfo
                )
                try Files.write(
                    signed("enclaveIdentity", collateral.qeIdentityBytes, collateral.qeIdentitySignature),
                    to: out + "/" + Layout.qeIdentity
                )
                try Files.write(pem(collateral.tcbInfoIssuerChain), to: out + "/" + Layout.tcbInfoIssuerChain)
                try Files.write(pem(collateral.qeIdentityIssuerChain), to: out + "/" + Layout.qeIdentityIssuerChain)
                try Files.write(pem(collateral.pckCRLIssuerChain), to: out + "/" + Layout.pckCRLIssuerChain)
                try Files.write(collateral.rootCACRL, to: out + "/" + Layout.rootCACRL)
                try Files.write(collateral.pckCRL, to: out + "/" + Layout.pckCRL)
                print(
                    "wrote to \(out): root-ca.pem (trust anchor), collateral.json (dcap-qvl layout) and the PCS files"
                )
            }
        }
    }
}
