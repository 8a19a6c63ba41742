import ArgumentParser
import CleanRoom
import CleanRoomInterface
import Crypto
import EnclaveCore
import Foundation

extension EnclaveCommand.CleanRoomCLI {
    /// `enclave cleanroom query`: a runner's signed request to run a query of the contract.
    struct Query: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign a request to run a contract query as a runner; writes the request JSON (POST /queries).",
            discussion: """
                The request carries the query ID, the runner, typed parameters (`NAME=TYPE:VALUE`, TYPE one of \
                integer, real, text, null) and a fresh nonce, signed (ES256) with the runner's key over the \
                contract ID and those fields. Nothing here decides whether the query may run: the clean room \
                enclave checks the query is approved, the runner allowed, the parameters typed as declared.
                """
        )

        @Option(help: "The canonical contract.")
        var contract: String

        @Option(help: "The runner's party name.")
        var party: String

        @Option(help: "The runner's signing key (PEM).")
        var key: String

        @Option(name: .customLong("query"), help: "The query's ID.")
        var queryID: String

        @Option(name: .customLong("param"), help: "A parameter, NAME=TYPE:VALUE (repeat for each).")
        var parameters: [String] = []

        @Option(help: "Where to write the request (default: standard output).")
        var out: String?

        func run() throws {
            let contract = try EnclaveCommand.CleanRoomCLI.readContract(contract)
            let key = try EnclaveCommand.CleanRoomCLI.signingKey(key)
            var values: [String: String] = [:]
            for parameter in parameters {
                guard let equals = parameter.firstIndex(of: "="),
                    QueryRequestSigning.value(String(parameter[parameter.index(after: equals)...])) != nil
                else { throw ValidationError("--param \(parameter) is not NAME=TYPE:VALUE") }
                values[String(parameter[..<equals])] = String(parameter[parameter.index(after: equals)...])
            }
            let nonce = Base64URL.encode((0..<24).map { _ in UInt8.random(in: 0...255) })
            let message = QueryRequestSigning.message(
                contractID: contract.id,
                queryID: queryID,
                runner: party,
                parameters: values,
                nonce: nonce
            )
            let request = CleanRoomQueryRequest(
                queryID: queryID,
                runner: party,
                parameters: values,
                nonce: nonce,
                signature: Base64URL.encode(Array(try key.signature(for: message).rawRepresentation))
            )
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let bytes = Array(try encoder.encode(request)) + [0x0A]
            if let out {
                try Files.write(bytes, to: out)
            } else {
                FileHandle.standardOutput.write(Data(bytes))
            }
        }
    }
}
