import AttestationService
import CleanRoomHost
import Foundation
import TestSupport
import Testing

/// Finding D: the clean room server holds at most `maxConnections` connections at once (the rest wait in the listen
/// backlog), as the attestation server does, so that connections alone cannot exhaust the descriptors its store
/// needs.
@Suite("Clean room server connection cap")
struct CleanRoomServerConnectionCapTests {
    @Test func connectionsAreCapped() async throws {
        let harness = try await CleanRoomHostRoutesTests.harness()
        var limits = AttestationServer.ConnectionLimits()
        limits.maxConnections = 5
        limits.headerTimeout = .seconds(120)
        let running = try await CleanRoomServer.start(host: harness.host, tls: nil, limits: limits)
        let flood = try (0..<15).map { _ in try RawConnection(port: running.port) }
        #expect(
            await RawConnection.eventually(within: 30) {
                RawConnection.serverConnections(port: running.port) >= 5
            },
            "the limit is never reached"
        )
        try await Task.sleep(for: .milliseconds(500))
        // The listener stops reading at the limit; NIO accepts in batches of up to 4 per read, hence the slack.
        let accepted = RawConnection.serverConnections(port: running.port)
        #expect((5...9).contains(accepted), "\(accepted) of \(flood.count) accepted")
        withExtendedLifetime(flood) {}
        await running.stop()
        await harness.close()
    }
}
