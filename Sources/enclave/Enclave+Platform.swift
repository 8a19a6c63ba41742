import ArgumentParser
import Attestation
import EnclaveCore
import EnclaveHost
import Foundation
import X509

extension EnclaveCommand {
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
