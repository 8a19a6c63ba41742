import ArgumentParser
import EnclaveHost
import Foundation
import HelloInterface

/// Loads the hello enclave and greets every line read from standard input.
@main
struct HelloHost: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Greet each line of standard input from inside the hello enclave."
    )

    @Option(help: "Path to the signed HelloEnclave image (its signature sits beside it as IMAGE.sig).")
    var enclave: String

    @Option(help: "The signature structure, if not IMAGE.sig beside the image.")
    var signature: String?

    @Flag(help: "Allow a debug-signed enclave.")
    var debug = false

    @Option(help: "Write remote evidence (an SGX quote) binding --nonce to this file, then exit.")
    var evidence: String?

    @Option(help: "Hexadecimal nonce bound into the evidence (report data starts with its SHA-256).")
    var nonce: String?

    @Flag(help: "Remote attestation: challenge, evidence binding an enclave key, token, token verified; then exit.")
    var attest = false

    @Option(help: "With --attest: the attestation service's URL (default: run one in this process).")
    var service: String?

    @Option(help: "With --attest and no --service: the in-process service's data directory.")
    var dataDir: String?

    func validate() throws {
        if evidence != nil {
            guard let nonce, let bytes = Hex.decode(nonce), !bytes.isEmpty, bytes.count <= 1024 else {
                throw ValidationError("--evidence needs --nonce: 1 to 1024 bytes in hexadecimal")
            }
        }
    }

    @Flag(help: "Print the enclave's process id and identity first, and its log lines to standard error.")
    var verbose = false

    func run() async throws {
        var options = Enclave.Options()
        options.debug = debug
        options.signaturePath = signature
        let verbose = self.verbose
        options.ocalls.register(Log.self) { line in
            if verbose { FileHandle.standardError.write(Data("[enclave] \(line.prefix(1024))\n".utf8)) }
            return Empty()
        }
        let instance: Enclave
        do {
            instance = try await Enclave.load(path: enclave, options: options)
        } catch let error as EnclaveError {
            throw ValidationError("cannot load \(enclave): \(error.reason)")
        }
        if verbose {
            let id = instance.identity
            print("enclave pid: \(instance.processID)")
            print("uniqueID: \(id.uniqueID.hex)")
            print("signerID: \(id.signerID.hex)")
            print("productID: \(id.productID) securityVersion: \(id.securityVersion) debug: \(id.isDebug)")
            fflush(nil)
        }
        if attest {
            do {
                try await attestFlow(instance)
            } catch {
                await instance.terminate()
                throw error
            }
            await instance.terminate()
            return
        }
        if let evidence, let nonce, let bytes = Hex.decode(nonce) {
            let attested = try await instance.call(Attest.self, bytes)
            try Data(attested.bytes).write(to: URL(fileURLWithPath: evidence))
            print("wrote \(attested.bytes.count) bytes of \(attested.provider) evidence to \(evidence)")
            await instance.terminate()
            return
        }
        while let line = readLine() {
            print(try await instance.call(Greet.self, line))
            fflush(nil)  // one answer per line, as it comes, even into a pipe
        }
        await instance.terminate()
    }
}
