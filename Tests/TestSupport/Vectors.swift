import Foundation

/// The real-evidence test vectors in `Tests/Vectors` (public data; provenance and expected outcomes in its
/// MANIFEST.md), read from the repository so a fresh clone has them.
public enum Vectors {
    /// The absolute path of `Tests/Vectors`.
    public static let root: String = {
        // Tests/TestSupport/Vectors.swift → Tests/Vectors
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Vectors").path
    }()

    /// The absolute path of `relative` (e.g. `sgx/phala-dcap-qvl/sgx_quote`) inside `Tests/Vectors`.
    public static func path(_ relative: String) -> String { root + "/" + relative }

    /// The bytes of the vector at `relative`.
    /// - Throws: the file system's error when the vector cannot be read.
    public static func bytes(_ relative: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(relative))))
    }

    /// The vector at `relative` as UTF-8 text.
    public static func text(_ relative: String) throws -> String {
        String(decoding: try bytes(relative), as: UTF8.self)
    }
}
