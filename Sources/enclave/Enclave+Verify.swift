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
            do {
                try await verify()
            } catch let error as AttestationError {
                // One mapping from the refusal to the exit status (AttestationError.exitCode).
                FileHandle.standardError.write(Data("Error: \(Self.message(error))\n".utf8))
                throw ExitCode(error.exitCode)
            }
        }

        /// The evidence's format as this command's options give it (`nil`: detect).
        var evidenceFormat: Evidence.Format? {
            switch format {
            case .auto: nil
            case .sgx: .sgx
            case .tdx: .tdx
            case .sevSNP: .sevSNP
            case .azureVTPM: .azureVTPM
            }
        }

        func verify() async throws {
            let bytes = try Files.evidence(evidence)
            let time = at.map { Date(timeIntervalSince1970: TimeInterval($0)) } ?? Date()
            let snp = format == .sevSNP || (format == .auto && (vcek != nil || auxblob != nil || bytes.count == 1184))
            if snp && vcek == nil && auxblob == nil && !AzureVTPMEvidence.looksLikeEvidence(bytes) {
                throw ValidationError("SEV-SNP evidence needs --vcek FILE (or --auxblob with a VCEK or VLEK)")
            }
            let evidence = try Evidence(
                detecting: bytes,
                format: evidenceFormat,
                auxiliaryData: try auxblob.map { try Files.read($0, what: "auxblob") } ?? [],
                certificates: try vcek.map { try Files.read($0, what: "VCEK") } ?? []
            )
            let verifier = EvidenceVerifier(
                anchors: try anchors(),
                collateral: try collateralSource(for: evidence),
                policy: policy
            )
            let outcome = await verifier.outcome(evidence, at: time)
            if let failure = outcome.failure { throw failure }
            guard let claims = outcome.claims else { throw AttestationError(.malformedEvidence, "no claims") }
            if let nonce {
                guard let nonceBytes = Hex.decode(nonce) else { throw ValidationError("--nonce is not hexadecimal") }
                guard Array(claims.reportData.prefix(32)) == Array(SHA256.hash(data: nonceBytes)) else {
                    throw AttestationError(.nonce, "the report data does not bind the nonce")
                }
            }
            let violation = outcome.violations.first

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
                    if outcome.violations.count > 1 {
                        refusal["refusals"] = outcome.violations.map { "\($0.requirement): \($0.reason)" }
                    }
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
            if !outcome.violations.isEmpty {
                throw AttestationError(
                    .policy,
                    outcome.violations.map(\.description).joined(separator: "; "),
                    violations: outcome.violations
                )
            }
        }

        /// The policy the flags make from the fail-closed defaults (the service starts from the same value).
        var policy: EvidencePolicy {
            var policy = EvidencePolicy.failClosed
            policy.allowSimulated = allowSimulated
            policy.allowDebug = allowDebug
            policy.requireSEPTVEDisable = !allowSeptVe
            policy.requireNoServiceTD = !allowServiceTd
            policy.allowMigrationAgent = allowMigrationAgent
            policy.allowSMT = !denySmt
            policy.maximumVMPL = maxVmpl
            policy.allowOutOfDate = allowOutOfDate
            policy.allowMissingTCBStatus = chainOnly
            return policy
        }

        /// `verification failed at CHECK: REASON`; a policy refusal names its requirement and the flag that accepts
        /// it.
        static func message(_ error: AttestationError) -> String {
            guard error.code == .policy, let violation = error.violations.first else { return error.description }
            let origin = isDefault(violation) ? "refused by default" : "refused"
            let remedy = flag(for: violation).map { "\($0) accepts it" } ?? "no flag accepts it"
            return
                "verification failed at policy (\(violation.requirement)): \(violation.reason) — the evidence itself "
                + "verified; \(origin), \(remedy)"
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

        /// Intel's root, this machine's simulated platform root, --trust-anchor; AMD's ARKs and --chain.
        func anchors() throws -> EvidenceVerifier.Anchors {
            var intel = [DCAPQuote.TrustAnchor(certificate: IntelRoots.sgxRootCA, simulated: false)]
            if let platform = try? SimulatedPlatform.open(), let pem = try? platform.rootCertificatePEM() {
                intel.append(.init(certificate: try Certificate(pemEncoded: pem), simulated: true))
            }
            for path in trustAnchor {
                guard let certificate = try? Certificate(pemEncoded: Files.readText(path, what: "trust anchor")) else {
                    throw ValidationError("\(path) is not a PEM certificate")
                }
                intel.append(.init(certificate: certificate, simulated: false))
            }
            var intermediates: [AMDCertificate] = []
            if let chain {
                do {
                    intermediates = try AMDCertificate.parseAll(Files.read(chain, what: "chain"))
                } catch {
                    throw AttestationError(.certificate, Files.describe(error))
                }
            }
            return EvidenceVerifier.Anchors(intel: intel, amdIntermediates: intermediates)
        }

        /// --collateral for every quote; for a quote of this machine's simulated platform, the platform's; otherwise
        /// none, refused naming --collateral and --chain-only (which verifies chain-only).
        func collateralSource(for evidence: Evidence) throws -> EvidenceVerifier.CollateralSource {
            let bundle: Collateral?
            do {
                bundle = try collateral.map { try Collateral(contentsOf: $0) }
            } catch {
                throw AttestationError(.malformedEvidence, Files.describe(error))
            }
            let platform = try? SimulatedPlatform.open()
            let simulatedRoot = try platform.map { try Certificate(pemEncoded: $0.rootCertificatePEM()) }
            let tdQuote = evidence.format == .azureVTPM
            return EvidenceVerifier.CollateralSource(allowsChainOnly: chainOnly) {
                quote,
                time throws(AttestationError) in
                if let bundle { return bundle }
                if let platform, let simulatedRoot, (try? quote.pckChain())?.last == simulatedRoot {
                    // Evidence of this machine's simulated platform: the platform supplies the collateral.
                    do {
                        return try Collateral(
                            dcapQVLJSON: platform.collateralJSON(issued: time.addingTimeInterval(-60))
                        )
                    } catch {
                        throw AttestationError(error)
                    }
                }
                let what = tdQuote ? "the TD quote" : "a real \(quote.isTDX ? "TDX" : "SGX") quote"
                throw AttestationError(
                    .collateralUnavailable,
                    "\(what) is verified with Intel's collateral: give --collateral (a PCCS directory or a dcap-qvl "
                        + "JSON bundle), or --chain-only to check only its signatures and PCK chain (revocation and "
                        + "TCB are then not checked)"
                )
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
