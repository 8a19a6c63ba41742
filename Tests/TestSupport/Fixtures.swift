public import Crypto
public import EnclaveCore
import EnclaveHost
import Foundation

/// Built products, temporary directories, freshly signed copies of the test enclaves, and the private simulated
/// platform the tests' processes share.
public enum Fixtures {
    /// The path of the built product `name` (beside the test bundle).
    public static func product(_ name: String) -> String { ChildProcess.product(name) }

    /// A stand-in identity for simulated quotes made without loading an enclave: uniqueID 01…01, signerID 02…02,
    /// product 1, security version 1.
    public static func standInIdentity() throws -> EnclaveIdentity {
        EnclaveIdentity(
            uniqueID: try Digest32(bytes: [UInt8](repeating: 1, count: 32)),
            signerID: try Digest32(bytes: [UInt8](repeating: 2, count: 32)),
            productID: 1,
            securityVersion: 1,
            attributes: []
        )
    }

    /// A new world-readable temporary directory (the unprivileged-user test reads from it), named after `label`;
    /// it lives under this test process's own root, removed when the process exits.
    public static func temporaryDirectory(_ label: String = "t") throws -> String {
        try TestDirectories.make(label)
    }

    /// A signed enclave image: where the image and its signature are, the key that signed it and its identity.
    public struct Signed: Sendable {
        public var image: String
        public var signature: String
        public var key: P256.Signing.PrivateKey
        public var identity: EnclaveIdentity
    }

    /// Sign `product` (or a copy of it) with a fresh key; the signature goes to a temporary directory.
    public static func sign(
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

    /// A private platform directory for the tests' enclaves and the processes they start (set as
    /// `ENCLAVEKIT_PLATFORM_DIR` in this process, so children inherit it).
    public static let platformDirectory: String = {
        let path = TestDirectories.root + "/platform-" + UUID().uuidString
        setenv("ENCLAVEKIT_PLATFORM_DIR", path, 1)  // inherited by HelloHost and the CLI
        return path
    }()

    /// Run a program on the tests' private platform (``platformDirectory``), returning its exit status and combined
    /// output (``ChildProcess/run(_:_:input:environment:currentDirectory:)``).
    @discardableResult
    public static func run(
        _ executable: String,
        _ arguments: [String],
        input: String? = nil
    ) throws -> (status: Int32, output: String) {
        _ = platformDirectory
        return try ChildProcess.run(executable, arguments, input: input)
    }
}
