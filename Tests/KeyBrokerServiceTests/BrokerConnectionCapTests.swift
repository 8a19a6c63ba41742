import AttestationService
import Foundation
import KeyBrokerService
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Finding D: the broker's server holds at most `maxConnections` connections at once (the rest wait in the listen
/// backlog), as the attestation server does, so that connections alone cannot exhaust the descriptors its store needs.
@Suite("Key broker connection cap")
struct BrokerConnectionCapTests {
    @Test func connectionsAreCapped() async throws {
        let store = try await SQLiteKeyBrokerStore.open(directory: try Fixtures.temporaryDirectory() + "/data")
        let core = try await KeyBrokerCore(
            store: store,
            engine: FakeBrokerEngine(),
            configuration: .init(adminCredential: nil)
        )
        var limits = AttestationServer.ConnectionLimits()
        limits.maxConnections = 5
        limits.headerTimeout = .seconds(120)
        let running = try await KeyBrokerServer.start(core: core, tls: nil, limits: limits)
        let flood = try (0..<15).map { _ in try RawConnection(port: running.port) }
        #expect(
            await RawConnection.eventually(within: 30) { RawConnection.serverConnections(port: running.port) >= 5 },
            "the limit is never reached"
        )
        try await Task.sleep(for: .milliseconds(500))
        // The listener stops reading at the limit; NIO accepts in batches of up to 4 per read, hence the slack.
        let accepted = RawConnection.serverConnections(port: running.port)
        #expect((5...9).contains(accepted), "\(accepted) of \(flood.count) accepted")
        withExtendedLifetime(flood) {}
        await running.stop()
        try await store.close()
    }
}
