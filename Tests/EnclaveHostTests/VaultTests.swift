import Crypto
import EnclaveHost
import Foundation
import Testing

@Suite("Samples/Vault across upgrades")
struct VaultTests {
    let host = Fixtures.product("VaultHost")

    /// A copy of VaultEnclave signed with `key` and `config`, in its own directory.
    func release(_ config: EnclaveConfig, key: P256.Signing.PrivateKey) throws -> String {
        try Fixtures.sign("VaultEnclave", config: config, copyImage: true, key: key).image
    }

    func put(_ enclave: String, _ store: String, _ name: String, _ secret: String, policy: String) throws -> Int32 {
        let signature = try signaturePath(enclave)
        return try Fixtures.run(
            host,
            ["put", "--enclave", enclave, "--signature", signature, "--store", store, "--policy", policy, name],
            input: secret
        ).status
    }

    func get(_ enclave: String, _ store: String, _ name: String) throws -> (status: Int32, output: String) {
        try Fixtures.run(
            host,
            ["get", "--enclave", enclave, "--signature", signaturePath(enclave), "--store", store, name]
        )
    }

    /// Fixtures.sign puts the signature beside the copied image's directory entry name.
    func signaturePath(_ image: String) throws -> String { image + ".sig" }

    @Test func upgradeKeepsSignerSecretsAndNothingElse() throws {
        let store = try Fixtures.temporaryDirectory()
        let key = P256.Signing.PrivateKey()
        let v1 = try release(EnclaveConfig(productID: 5, securityVersion: 1), key: key)
        let v2 = try release(EnclaveConfig(productID: 5, securityVersion: 2), key: key)
        let changed = try release(EnclaveConfig(productID: 5, securityVersion: 2, maxThreads: 2), key: key)
        let stranger = try release(EnclaveConfig(productID: 5, securityVersion: 2), key: P256.Signing.PrivateKey())

        #expect(try put(v1, store, "db-password", "hunter2", policy: "signer") == 0)
        #expect(try put(v1, store, "pinned", "only-v1-build", policy: "unique") == 0)
        let blob = try Data(contentsOf: URL(fileURLWithPath: store + "/db-password.sealed"))
        #expect(!blob.contains(Data("hunter2".utf8)))

        // Same signer, higher security version: reads the signer-policy secret.
        #expect(try get(v2, store, "db-password") == (0, "hunter2"))
        // Same measurement (same image and layout): reads the unique-policy secret; a changed enclave cannot.
        #expect(try get(v2, store, "pinned") == (0, "only-v1-build"))
        let pinned = try get(changed, store, "pinned")
        #expect(pinned.status != 0)
        #expect(pinned.output.contains("cannot unseal pinned"))
        // Another signer reads neither.
        #expect(try get(stranger, store, "db-password").status != 0)

        // A secret sealed by v2 is out of v1's reach: no downgrades.
        #expect(try put(v2, store, "new-secret", "v2 only", policy: "signer") == 0)
        let downgrade = try get(v1, store, "new-secret")
        #expect(downgrade.status != 0)
        #expect(downgrade.output.contains("refused"))

        // A blob renamed on the host does not unseal under the new name.
        try FileManager.default.copyItem(atPath: store + "/db-password.sealed", toPath: store + "/other.sealed")
        let renamed = try get(v2, store, "other")
        #expect(renamed.status != 0)
        #expect(renamed.output.contains("another name"))

        #expect(try get(v1, store, "../etc/passwd").status != 0)
    }
}
