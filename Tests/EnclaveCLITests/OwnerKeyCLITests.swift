import Crypto
import EnclaveCore
import Foundation
import TestSupport
import Testing

/// An owner's key name stays the owner's through the CLI (`keys rotate`/`create` refused `KeyOwnedByImporter`),
/// `keys encrypt` checks the key it encrypts to (`--expect-thumbprint`, `--expect-origin`), and `keys refusals`
/// reads the broker's anonymous refusal counts (review 5, finding 2).
@Suite("enclave keys: owner-imported names, encryption key checks, refusal counts", .serialized)
struct OwnerKeyCLITests {
    @Test("rotate and create under an owner's name are refused; encrypt pins the owner's key; refusals are read")
    func ownersNameAndRefusals() throws {
        let services = try KeysCLITests.Services()
        let policy = try services.policyFile()
        let attestationOption = ["--attestation", services.attestation.base]
        let pem = try services.write("owner.pem", Array(P256.Signing.PrivateKey().pemRepresentation.utf8))
        _ = try services.ok(
            "import",
            ["owned", "--key-file", pem, "--exportable", "--policy", policy] + attestationOption
        )
        #expect(try services.ok("show", ["owned"]).contains("\"origin\" : \"owner\""))
        let thumbprint = try services.ok("show", ["owned", "--thumbprint"]).trimmingCharacters(
            in: .whitespacesAndNewlines
        )
        #expect(thumbprint.utf8.count == 43, "\(thumbprint)")

        // The administrator can't put a version of its own under the owner's name.
        try services.refused("rotate", ["owned"], naming: "KeyOwnedByImporter")
        try services.refused("create", ["owned", "--kty", "EC"], naming: "KeyOwnedByImporter")
        #expect(try services.ok("show", ["owned", "--versions"]).components(separatedBy: "/keys/owned/").count == 2)

        // Encrypt checks the key: the owner's thumbprint and origin pass, another thumbprint or origin is refused.
        let plaintext = try services.write("plain.txt", Array("owner's data\n".utf8))
        _ = try services.ok(
            "encrypt",
            [
                "--key", "owned", "--expect-thumbprint", thumbprint, "--expect-origin", "owner", plaintext,
                services.work + "/owned.ekev",
            ]
        )
        try services.refused(
            "encrypt",
            [
                "--key", "owned", "--expect-thumbprint", String(repeating: "A", count: 43), plaintext,
                services.work + "/x",
            ],
            naming: "KeyThumbprintMismatch"
        )
        try services.refused(
            "encrypt",
            ["--key", "owned", "--expect-origin", "administrator", plaintext, services.work + "/y"],
            naming: "KeyOriginNotExpected"
        )
        try services.refused(
            "encrypt",
            ["--key", "owned", "--expect-origin", "host", plaintext, services.work + "/z"],
            naming: "--expect-origin is owner or administrator"
        )
        #expect(!FileManager.default.fileExists(atPath: services.work + "/x"))

        // Refusal counts: none yet, then a release of an unknown key (anonymous: counted, not audited).
        #expect(try services.ok("refusals", []).contains("no refused releases counted"))
        let token = try services.write("junk.jwt", Array("a.b.c".utf8))
        try services.refused("release", ["no-such-key", "--token", token], naming: "KeyNotFound")
        try services.refused("release", ["no-such-key", "--token", token], naming: "KeyNotFound")
        let table = try services.ok("refusals", [])
        let rows = table.split(separator: "\n")
        #expect(rows.first?.hasPrefix("minute (UTC)") == true, "\(table)")
        #expect(
            rows.dropFirst().contains { $0.split(separator: " ").suffix(3) == ["2", "-", "KeyNotFound"] },
            "\(table)"
        )
        let json = try services.ok("refusals", ["--json", "--top", "5"])
        #expect(json.contains("\"code\" : \"KeyNotFound\"") && json.contains("\"count\" : 2"), "\(json)")
        try services.refused("refusals", ["--top", "0"], naming: "--top is 1 to 10000")
    }
}
