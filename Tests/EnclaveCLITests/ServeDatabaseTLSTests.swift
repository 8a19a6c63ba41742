import Foundation
import TestSupport
import Testing

/// `--database` toward a host that is not loopback: the modes that don't verify the server are a usage error naming
/// the override, and `--allow-unverified-database-tls` accepts them with a warning (review 6, finding A). `127.1`
/// reaches this machine but is not written as loopback, so it counts as another host; nobody listens on port 1.
@Suite("enclave --database: the server is verified off loopback")
struct ServeDatabaseTLSTests {
    let cli = Fixtures.product("enclave")

    @Test(arguments: [["serve", "attestation"], ["cleanroom", "serve"]])
    func unverifiedModeOffLoopbackNeedsTheOverride(command: [String]) throws {
        let work = try Fixtures.temporaryDirectory()
        let database = ["--database", "postgres://u@127.1:1/db?sslmode=require"]
        let refused = try Fixtures.run(cli, command + ["--port", "0", "--data-dir", work + "/a"] + database)
        #expect(refused.status == 64, "\(refused.output)")
        #expect(refused.output.contains("sslmode=require toward 127.1"), "\(refused.output)")
        #expect(refused.output.contains("--allow-unverified-database-tls"), "\(refused.output)")

        let allowed = try Fixtures.run(
            cli,
            command + ["--port", "0", "--data-dir", work + "/b", "--allow-unverified-database-tls"] + database
        )
        #expect(allowed.status == 70, "\(allowed.output)")
        #expect(allowed.output.contains("Warning: --allow-unverified-database-tls"), "\(allowed.output)")
        #expect(allowed.output.contains("cannot connect to PostgreSQL at 127.1:1"), "\(allowed.output)")
    }

    /// Every command with `--database` lists the modes, the default and the override.
    @Test(arguments: [["serve", "attestation"], ["serve", "keybroker"], ["cleanroom", "serve"]])
    func helpListsTheModes(command: [String]) throws {
        let help = try Fixtures.run(cli, command + ["--help"])
        let text = help.output.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for word in ["disable|allow|prefer|require|verify-ca|verify-full", "--allow-unverified-database-tls"] {
            #expect(text.contains(word), "\(command): \(word)")
        }
        #expect(text.contains("Without sslmode: verify-full"), "\(command)")
    }
}
