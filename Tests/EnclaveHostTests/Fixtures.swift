import Crypto
import EnclaveHost
import Foundation
import TestInterface

/// Built products and freshly signed copies of the test enclaves.
enum Fixtures {
    /// The directory holding the package's built executables (beside the test bundle).
    static let buildDirectory: String = {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return executable.deletingLastPathComponent().path
    }()

    static func product(_ name: String) -> String { buildDirectory + "/" + name }

    /// A world-readable temporary directory (the unprivileged-user test reads from it).
    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "enclavekit-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        return path
    }

    struct Signed {
        var image: String
        var signature: String
        var key: P256.Signing.PrivateKey
        var identity: EnclaveIdentity
    }

    /// Sign `product` (or a copy of it) with a fresh key; the signature goes to a temporary directory.
    static func sign(
        _ product: String = "TestEnclave",
        config: EnclaveConfig = EnclaveConfig(productID: 1, securityVersion: 1),
        copyImage: Bool = false,
        key: P256.Signing.PrivateKey = P256.Signing.PrivateKey()
    ) throws -> Signed {
        let directory = try temporaryDirectory()
        var image = Self.product(product)
        if copyImage {
            let copy = directory + "/" + product
            try FileManager.default.copyItem(atPath: image, toPath: copy)
            image = copy
        }
        let measured = try EnclaveImage(path: image)
        let body = EnclaveSignature.Body(manifest: measured.manifest(config: config), config: config)
        let signature = try EnclaveSignature(signing: body, with: key)
        let signaturePath = directory + "/" + product + ".sig"
        try Data(signature.bytes).write(to: URL(fileURLWithPath: signaturePath))
        return Signed(image: image, signature: signaturePath, key: key, identity: signature.identity)
    }

    /// A private platform directory for the tests' enclaves and the processes they start.
    static let platformDirectory: String = {
        let path = NSTemporaryDirectory() + "enclavekit-test-platform-" + UUID().uuidString
        setenv("ENCLAVEKIT_PLATFORM_DIR", path, 1)  // inherited by HelloHost and the CLI
        return path
    }()

    static func options(_ signed: Signed, debug: Bool = false) -> Enclave.Options {
        var options = Enclave.Options()
        options.platform = try? SimulatedPlatform.open(directory: platformDirectory)
        options.evidenceSource = .simulated  // the tests' evidence is the simulated platform's, even on a CVM
        options.signaturePath = signed.signature
        options.debug = debug
        return options
    }

    /// A simulated platform of its own (a fresh directory) and a quote from the test enclave on it, whose report
    /// data starts with `reportData`.
    static func evidenceOnFreshPlatform(reportData: [UInt8]) async throws -> (SimulatedPlatform, [UInt8]) {
        let platform = try SimulatedPlatform.open(directory: temporaryDirectory() + "/platform")
        let signed = try sign()
        var options = options(signed)
        options.platform = platform
        let enclave = try await Enclave.load(path: signed.image, options: options)
        let evidence = try await enclave.call(Evidence.self, reportData).bytes
        await enclave.terminate()
        return (platform, evidence)
    }

    /// Run a program, returning its exit status and combined output.
    @discardableResult
    static func run(
        _ executable: String,
        _ arguments: [String],
        input: String? = nil
    ) throws -> (
        status: Int32, output: String
    ) {
        _ = platformDirectory
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let stdin = Pipe()
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try stdin.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
