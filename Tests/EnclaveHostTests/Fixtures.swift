import EnclaveHost
import TestInterface
import TestSupport

/// The shared fixtures and vectors (TestSupport), under the names every file of this target uses.
typealias Fixtures = TestSupport.Fixtures
typealias Vectors = TestSupport.Vectors

/// What the host tests add to ``Fixtures``: load options on the private platform, and evidence from a fresh one.
extension TestSupport.Fixtures {
    /// How long an enclave may take to start in these tests: generous, because CI starts many at once on two loaded
    /// cores; no test here wants the start timeout to fire.
    static let startTimeout = Duration.seconds(120)

    static func options(_ signed: Signed, debug: Bool = false) -> Enclave.Options {
        var options = Enclave.Options()
        options.platform = try? SimulatedPlatform.open(directory: platformDirectory)
        options.evidenceSource = .simulated  // the tests' evidence is the simulated platform's, even on a CVM
        options.signaturePath = signed.signature
        options.debug = debug
        options.startTimeout = Self.startTimeout
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
}
