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
                Intel SGX and TDX quotes (DCAP, versions 3 to 5) are detected by themselves; AMD SEV-SNP reports \
                are detected by size or chosen with --format sev-snp. Evidence may be binary or hexadecimal text. \
                Trust anchors default to Intel's SGX root, AMD's ARKs (Milan, Genoa, Turin) and, for simulated \
                evidence, this machine's simulated platform root. Real SGX and TDX quotes need Intel's collateral \
                (--collateral): without it they are refused, unless --chain-only asks for the signatures and PCK chain \
                alone (the quoting enclave pinned to Intel's; revocation and TCB are then not checked). Simulated \
                evidence gets this machine's collateral. Cryptographically valid evidence is then judged by the \
                policy, which fails closed: no simulation, no debug, TDX SEPT_VE_DISABLE set and no service TD, \
                SEV-SNP no migration agent and VMPL 0, a TCB status that is current (not out of date, not revoked, \
                not missing). Exits non-zero naming the failed check, and for a policy refusal the flag that accepts it.
                """
        )

        enum Format: String, ExpressibleByArgument, CaseIterable {
            case auto, sgx, tdx
            case sevSNP = "sev-snp"
            case azureVTPM = "azure-vtpm"
        }

        @Argument(help: "The evidence file: a quote, or an SEV-SNP report (configfs-tsm outblob).")
        var evidence: String

        @Option(
            help:
                "Evidence format: auto, sgx, tdx, sev-snp or azure-vtpm (an Azure CVM's HCL report, vTPM quote and VCEK or TD quote, as JSON)."
        )
        var format: Format = .auto

        @Option(help: "Intel collateral: a directory of PCS/PCCS files, or a JSON bundle in the dcap-qvl layout.")
        var collateral: String?

        @Option(help: "SEV-SNP: the VCEK or VLEK (DER or PEM; a PEM bundle may carry the ASK/ARK after it).")
        var vcek: String?

        @Option(help: "SEV-SNP: the ASK (or ASVK) and ARK, PEM.")
        var chain: String?

        @Option(help: "SEV-SNP: a configfs-tsm auxblob (certificate table with VCEK/VLEK, ASK, ARK).")
        var auxblob: String?

        @Option(help: "An additional Intel trust anchor (PEM); may repeat.")
        var trustAnchor: [String] = []

        @Option(help: "Verification time as Unix seconds (default: now).")
        var at: Int64?

        @Option(help: "Hexadecimal nonce: the report data must start with its SHA-256.")
        var nonce: String?

        @Flag(help: "Accept evidence from a simulated platform.")
        var allowSimulated = false

        @Flag(help: "Accept debug enclaves, TDs and guests.")
        var allowDebug = false

        @Flag(help: "TDX: accept TDs without SEPT_VE_DISABLE.")
        var allowSeptVe = false

        @Flag(help: "TDX: accept TDs bound to a service TD (MRSERVICETD not zero).")
        var allowServiceTd = false

        @Flag(help: "SEV-SNP: accept guests whose policy allows a migration agent.")
        var allowMigrationAgent = false

        @Flag(help: "SEV-SNP: refuse guests whose policy allows SMT.")
        var denySmt = false

        @Option(help: "SEV-SNP: the highest VMPL accepted (0-3).")
        var maxVmpl: UInt32 = 0

        @Flag(help: "SGX/TDX: accept an out-of-date TCB (OutOfDate, OutOfDateConfigurationNeeded, TDRelaunchAdvised).")
        var allowOutOfDate = false

        @Flag(
            help: """
                SGX/TDX without --collateral: verify only the signatures and the PCK chain, the quoting enclave pinned \
                to Intel's. Revocation and TCB are NOT checked.
                """
        )
        var chainOnly = false

        @Flag(help: "Print JSON.")
        var json = false

        func validate() throws {
            guard maxVmpl <= 3 else { throw ValidationError("--max-vmpl is 0 to 3") }
        }

        func run() async throws {
            let bytes = try Files.evidence(evidence)
            let time = at.map { Date(timeIntervalSince1970: TimeInterval($0)) } ?? Date()
            let claims: Claims
            let snp =
                format == .sevSNP || (format == .auto && (vcek != nil || auxblob != nil || bytes.count == 1184))
            if format == .azureVTPM || (format == .auto && AzureVTPMEvidence.looksLikeEvidence(bytes)) {
                claims = try await verifyAzureVTPM(bytes, at: time)
            } else if snp {
                claims = try verifySEVSNP(bytes, at: time)
            } else {
                claims = try await verifyDCAP(bytes, at: time)
            }
            if let nonce {
                guard let nonceBytes = Hex.decode(nonce) else { throw ValidationError("--nonce is not hexadecimal") }
                guard Array(claims.reportData.prefix(32)) == Array(SHA256.hash(data: nonceBytes)) else {
                    throw Failure(check: "nonce", reason: "the report data does not bind the nonce")
                }
            }
            var policy = EvidencePolicy()
            policy.allowSimulated = allowSimulated
            policy.allowDebug = allowDebug
            policy.requireSEPTVEDisable = !allowSeptVe
            policy.requireNoServiceTD = !allowServiceTd
            policy.allowMigrationAgent = allowMigrationAgent
            policy.allowSMT = !denySmt
            policy.maximumVMPL = maxVmpl
            policy.allowOutOfDate = allowOutOfDate
            policy.allowMissingTCBStatus = chainOnly
            var violation: EvidencePolicy.Violation?
            do { try policy.check(claims) } catch { violation = error }

            var object = claims.jsonObject
            // Only a full verification is `true`; a chain-only one says what it is (and `notChecked` what it skipped).
            object["verified"] = claims.notChecked.isEmpty ? true : "chain-only"
            object["policy"] =
                violation.map {
                    var refusal: [String: Any] = [
                        "accepted": false, "requirement": $0.requirement, "reason": $0.reason,
                        "default": Self.isDefault($0),
                    ]
                    if let flag = Self.flag(for: $0) { refusal["flag"] = flag }
                    return refusal
                } ?? ["accepted": true]
            if json {
                try Files.printJSON(object)
            } else {
                Self.printFlat(object)
            }
            fflush(nil)  // the claims before the warning and the refusal on standard error
            if !claims.notChecked.isEmpty {
                FileHandle.standardError.write(
                    Data(
                        ("warning: chain-only verification: \(claims.notChecked.joined(separator: " and ")) were not "
                            + "checked\n").utf8
                    )
                )
            }
            if let violation {
                let origin = Self.isDefault(violation) ? "refused by default" : "refused"
                let remedy = Self.flag(for: violation).map { "\($0) accepts it" } ?? "no flag accepts it"
                throw Failure(
                    check: "policy (\(violation.requirement))",
                    reason: violation.reason + " — the evidence itself verified; \(origin), \(remedy)"
                )
            }
        }

        /// Whether the policy's default refused (every requirement but SMT, which only --deny-smt refuses).
        static func isDefault(_ violation: EvidencePolicy.Violation) -> Bool { violation.setting != "allowSMT" }

        /// The flag that accepts what `violation` refused, if any.
        static func flag(for violation: EvidencePolicy.Violation) -> String? {
            switch violation.setting {
            case "allowSimulated": "--allow-simulated"
            case "allowDebug": "--allow-debug"
            case "requireSEPTVEDisable": "--allow-sept-ve"
            case "requireNoServiceTD": "--allow-service-td"
            case "allowMigrationAgent": "--allow-migration-agent"
            case "allowSMT": "leaving out --deny-smt"
            case "maximumVMPL": "--max-vmpl N"
            case "allowOutOfDate": "--allow-out-of-date"
            case "allowMissingTCBStatus": "--collateral (or --chain-only)"
            default: nil
            }
        }

        func verifyDCAP(_ bytes: [UInt8], at time: Date) async throws -> Claims {
            var anchors = [DCAPQuote.TrustAnchor(certificate: IntelRoots.sgxRootCA, simulated: false)]
            if let platform = try? SimulatedPlatform.open(), let pem = try? platform.rootCertificatePEM() {
                anchors.append(.init(certificate: try Certificate(pemEncoded: pem), simulated: true))
            }
            for path in trustAnchor {
                guard let certificate = try? Certificate(pemEncoded: Files.readText(path, what: "trust anchor")) else {
                    throw ValidationError("\(path) is not a PEM certificate")
                }
                anchors.append(.init(certificate: certificate, simulated: false))
            }
            do {
                let quote = try DCAPQuote(bytes: bytes)
                if format == .sgx && quote.isTDX || format == .tdx && !quote.isTDX {
                    throw Failure(check: "format", reason: "the quote is not \(format.rawValue)")
                }
                if let collateral {
                    let bundle = try Collateral(contentsOf: collateral)
                    return try await quote.verify(anchors: anchors, collateral: bundle, at: time)
                }
                if let simulated = anchors.first(where: \.simulated),
                    (try? quote.pckChain())?.last == simulated.certificate,
                    let platform = try? SimulatedPlatform.open()
                {
                    // Evidence of this machine's simulated platform: the platform supplies the collateral.
                    let bundle = try Collateral(
                        dcapQVLJSON: platform.collateralJSON(issued: time.addingTimeInterval(-60))
                    )
                    return try await quote.verify(anchors: anchors, collateral: bundle, at: time)
                }
                guard chainOnly else {
                    throw Failure(
                        check: "collateral",
                        reason: "a real \(quote.isTDX ? "TDX" : "SGX") quote is verified with Intel's collateral: give "
                            + "--collateral (a PCCS directory or a dcap-qvl JSON bundle), or --chain-only to check only "
                            + "its signatures and PCK chain (revocation and TCB are then not checked)"
                    )
                }
                return try await quote.verifyChainOnly(anchors: anchors, at: time)
            } catch let failure as DCAPQuote.VerificationFailure {
                throw Failure(check: failure.check.rawValue, reason: failure.reason)
            } catch let failure as Failure {
                throw failure
            } catch {
                throw Failure(check: "parse", reason: Files.describe(error))
            }
        }

        func verifySEVSNP(_ bytes: [UInt8], at time: Date) throws -> Claims {
            var leaf: AMDCertificate?
            var intermediates: [AMDCertificate] = []
            do {
                if let auxblob {
                    let table = try SEVSNPCertificateTable(bytes: Files.read(auxblob, what: "auxblob"))
                    leaf = table.vcek ?? table.vlek
                    intermediates += [table.ask, table.ark].compactMap { $0 }
                }
                if let vcek {
                    let certificates = try AMDCertificate.parseAll(Files.read(vcek, what: "VCEK"))
                    leaf = certificates.first
                    intermediates += certificates.dropFirst()
                }
                if let chain { intermediates += try AMDCertificate.parseAll(Files.read(chain, what: "chain")) }
            } catch {
                throw Failure(check: "certificate", reason: Files.describe(error))
            }
            guard let leaf else {
                throw ValidationError("SEV-SNP evidence needs --vcek FILE (or --auxblob with a VCEK or VLEK)")
            }
            do {
                let report = try SEVSNPReport(bytes: bytes)
                return try report.verify(signingCertificate: leaf, chain: intermediates, at: time)
            } catch let failure as SEVSNPReport.VerificationFailure {
                throw Failure(check: failure.check.rawValue, reason: failure.reason)
            } catch {
                throw Failure(check: "parse", reason: Files.describe(error))
            }
        }

        func verifyAzureVTPM(_ bytes: [UInt8], at time: Date) async throws -> Claims {
            do {
                let evidence = try AzureVTPMEvidence(json: bytes)
                let chain = try chain.map { try AMDCertificate.parseAll(Files.read($0, what: "chain")) } ?? []
                let bundle = try collateral.map { try Collateral(contentsOf: $0) }
                return try await evidence.verify(
                    at: time,
                    amdChain: chain,
                    collateral: bundle,
                    tdxChainOnly: chainOnly
                )
            } catch let failure as AzureVTPMEvidence.VerificationFailure where failure.check == "collateral" {
                throw Failure(
                    check: failure.check,
                    reason: "the TD quote is verified with Intel's collateral: give --collateral, or --chain-only to "
                        + "check only its signatures and PCK chain (revocation and TCB are then not checked)"
                )
            } catch let failure as AzureVTPMEvidence.VerificationFailure {
                throw Failure(check: failure.check, reason: failure.reason)
            } catch let failure as SEVSNPReport.VerificationFailure {
                throw Failure(check: failure.check.rawValue, reason: failure.reason)
            } catch let failure as DCAPQuote.VerificationFailure {
                throw Failure(check: failure.check.rawValue, reason: failure.reason)
            } catch {
                throw Failure(check: "parse", reason: Files.describe(error))
            }
        }

        static func printFlat(_ object: [String: Any], prefix: String = "") {
            for (key, value) in object.sorted(by: { $0.key < $1.key }) {
                if let nested = value as? [String: Any] {
                    printFlat(nested, prefix: prefix + key + ".")
                } else if let list = value as? [String] {
                    print("\(prefix)\(key): \(list.joined(separator: ", "))")
                } else {
                    print("\(prefix)\(key): \(value)")
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
}
