import ArgumentParser
import CleanRoom
import Crypto
import EnclaveCore
import Foundation

extension EnclaveCommand.CleanRoomCLI {
    /// `enclave cleanroom contract`: draft, sign, verify, show and halt a contract.
    struct Contract: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Draft, sign, verify, show or halt a clean room contract.",
            subcommands: [New.self, Sign.self, Verify.self, Show.self, Halt.self]
        )
    }
}

extension EnclaveCommand.CleanRoomCLI.Contract {
    struct New: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Turn a readable JSON spec into the canonical contract; prints its ID.",
            discussion: """
                The spec has the contract's fields (see docs/cleanroom.md) with free whitespace and order; signing \
                keys may be PEM. The output is the canonical contract whose SHA-256 is the contract ID.
                """
        )

        @Argument(help: "The spec (JSON).")
        var spec: String

        @Argument(help: "Where to write the canonical contract.")
        var out: String

        func run() throws {
            let bytes = try Files.read(spec, what: "spec", limit: CanonicalJSON.maxBytes)
            let contract = try EnclaveCommand.CleanRoomCLI.refusing { try CleanRoom.Contract(spec: bytes) }
            try Files.write(contract.canonicalBytes, to: out)
            print(contract.id.hex)
        }
    }

    struct Sign: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign a contract as one of its parties (ES256 over the contract ID); writes the signature."
        )

        @Argument(help: "The canonical contract.")
        var contract: String

        @Option(help: "The signing party's name in the contract.")
        var party: String

        @Option(help: "The party's P-256 private key (PEM).")
        var key: String

        @Option(help: "Where to write the signature document.")
        var out: String

        func run() throws {
            let contract = try EnclaveCommand.CleanRoomCLI.readContract(contract)
            let key = try EnclaveCommand.CleanRoomCLI.signingKey(key)
            let signature = try EnclaveCommand.CleanRoomCLI.refusing {
                try ContractSignature(signing: contract, as: party, key: key)
            }
            try Files.write(signature.canonicalBytes, to: out)
            print("\(party) signed \(contract.id.hex)")
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify a contract with its signatures and halt statements; prints its ID, state and signers.",
            discussion: """
                Exits 1 when the contract or any signature or halt statement does not verify, and with \
                --require-active also when the contract is not active (a draft or halted).
                """
        )

        @Argument(help: "The canonical contract.")
        var contract: String

        @Option(name: .customLong("signature"), help: "A signature document (repeat for each party).")
        var signatures: [String] = []

        @Option(name: .customLong("halt"), help: "A halt statement (repeatable).")
        var halts: [String] = []

        @Flag(help: "Exit 1 unless the contract is active.")
        var requireActive = false

        func run() throws {
            let contract = try EnclaveCommand.CleanRoomCLI.readContract(contract)
            let signatureBytes = try signatures.map { try Files.read($0, what: "signature", limit: 4096) }
            let haltBytes = try halts.map { try Files.read($0, what: "halt statement", limit: 8192) }
            let state = try EnclaveCommand.CleanRoomCLI.refusing {
                try ContractState.evaluate(
                    contract,
                    signatures: try signatureBytes.map { try ContractSignature(canonicalBytes: $0) },
                    halts: try haltBytes.map { try HaltStatement(canonicalBytes: $0) }
                )
            }
            print("contract: \(contract.id.hex)")
            print("state: \(state.phase.rawValue)")
            print("signed by: \(state.signedBy.isEmpty ? "nobody" : state.signedBy.joined(separator: ", "))")
            if !state.missing.isEmpty { print("waiting for: \(state.missing.joined(separator: ", "))") }
            for halt in state.halts { print("halted by: \(halt.party) (\(halt.reason))") }
            if requireActive {
                try EnclaveCommand.CleanRoomCLI.refusing { try state.requireActive() }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a contract for people.")

        @Argument(help: "The canonical contract.")
        var contract: String

        func run() throws {
            let contract = try EnclaveCommand.CleanRoomCLI.readContract(contract)
            print("contract \(contract.id.hex): \(contract.name)")
            print(
                "enclave: signer \(contract.enclave.signerID.hex), product \(contract.enclave.productID), "
                    + "security version ≥ \(contract.enclave.minSecurityVersion)"
                    + (contract.enclave.uniqueID.map { ", build \($0.hex) only" } ?? "")
            )
            print("parties:")
            for party in contract.parties {
                print("  \(party.name) [\(party.roles.map(\.rawValue).joined(separator: ", "))]")
            }
            print("data sets:")
            for set in contract.dataSets {
                let columns = set.columns.map { "\($0.name) \($0.type.rawValue)" }.joined(separator: ", ")
                print("  \(set.name) (owner \(set.owner), identity \(set.identity)): \(columns)")
                print("    readable: \(set.readable.joined(separator: ", "))")
            }
            print("queries:")
            for query in contract.queries {
                let parameters = query.parameters.map { ":\($0.name) \($0.type.rawValue)" }.joined(separator: ", ")
                print(
                    "  \(query.id) (run by \(query.runners.joined(separator: ", ")); reads "
                        + "\(query.reads.joined(separator: ", ")); parameters \(parameters.isEmpty ? "none" : parameters))"
                )
                print("    \(query.sql)")
            }
            print("output rules:")
            for rule in contract.outputRules {
                var line = "  \(rule.owner): at least \(rule.minIdentities) distinct identities per group"
                if !rule.neverOutput.isEmpty { line += "; never output \(rule.neverOutput.joined(separator: ", "))" }
                if let privacy = rule.privacy {
                    line +=
                        "; ε \(Double(privacy.epsilonMilli) / 1000) per query, budget "
                        + "\(Double(privacy.budgetMilli) / 1000)"
                }
                print(line)
            }
            print("recipients: \(contract.recipients.map(\.party).joined(separator: ", "))")
        }
    }

    struct Halt: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Halt a contract as one of its parties; writes the signed halt statement."
        )

        @Argument(help: "The canonical contract.")
        var contract: String

        @Option(help: "The halting party's name.")
        var party: String

        @Option(help: "The party's P-256 private key (PEM).")
        var key: String

        @Option(help: "Why (for people, at most 1024 bytes).")
        var reason: String

        @Option(help: "Where to write the halt statement.")
        var out: String

        func run() throws {
            let contract = try EnclaveCommand.CleanRoomCLI.readContract(contract)
            let key = try EnclaveCommand.CleanRoomCLI.signingKey(key)
            let halt = try EnclaveCommand.CleanRoomCLI.refusing {
                try HaltStatement(halting: contract, as: party, reason: reason, key: key)
            }
            try Files.write(halt.canonicalBytes, to: out)
            print("\(party) halted \(contract.id.hex)")
        }
    }
}
