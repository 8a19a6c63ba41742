import AttestationService
import Foundation
import Testing

/// `ConnectionLimits.minimumBodyRate`: a large body that keeps up the rate is served past `bodyTimeout` (a clean
/// room data set of up to 1 GiB, which the fixed 30 s deadline cut below 35 MB/s), while a trickle is still cut at
/// `bodyTimeout`.
@Suite("Connection limits: minimum body rate", .serialized)
struct BodyRateTests {
    static func limits(rate: Int?) -> AttestationServer.ConnectionLimits {
        AttestationServer.ConnectionLimits(
            headerTimeout: .seconds(5),
            bodyTimeout: .seconds(2),
            idleTimeout: .seconds(5),
            lingerTimeout: .milliseconds(500),
            minimumBodyRate: rate
        )
    }

    /// Send a 40 KiB body at about 10 KiB/s (4 s, twice the body timeout); answers whether an HTTP response came.
    static func slowUpload(port: Int) async throws -> (answered: Bool, text: String) {
        let client = try LoopbackSocket(port: port)
        client.send("POST /attest/SimulatedEnclave HTTP/1.1\r\nHost: x\r\nContent-Length: 40960\r\n\r\n")
        let chunk = String(repeating: " ", count: 1024)
        for _ in 0..<40 {
            guard client.send(chunk), !client.closedNow() else { return (false, "closed while sending") }
            try await Task.sleep(for: .milliseconds(100))
        }
        let answer = await client.read(for: 20, oneResponse: true)
        return (answer.text.hasPrefix("HTTP/1.1 "), answer.text)
    }

    static func withServer(rate: Int?, _ body: (Int) async throws -> Void) async throws {
        try await ConnectionLimitTests.withServer(limits(rate: rate), body)
    }

    /// Without a rate the body deadline is fixed: the 4 s upload is cut at 2 s (what a 1 GiB upload below 35 MB/s
    /// met under the 30 s default). With 64 bytes/s each KiB received earns 16 s: it is answered, even when the
    /// client is descheduled for seconds between pieces (a loaded CI machine: with a 1 KiB/s floor a stall of a second
    /// or two after a piece cut a paced upload).
    @Test func aBodyKeepingTheRateIsServedPastTheBodyTimeout() async throws {
        try await Self.withServer(rate: nil) { port in
            let fixed = try await Self.slowUpload(port: port)
            #expect(!fixed.answered, "a 4 s body passed a fixed 2 s deadline: \(fixed.text)")
        }
        try await Self.withServer(rate: 64) { port in
            let paced = try await Self.slowUpload(port: port)
            #expect(paced.answered, "a body at 10 KiB/s was cut under a 64 bytes/s floor: \(paced.text)")
        }
    }

    /// A trickle (a byte every 100 ms) earns almost nothing: still cut at the 2 s body deadline, not before it.
    @Test func aTrickleIsStillCutAtTheBodyTimeout() async throws {
        try await Self.withServer(rate: 1 << 10) { port in
            try await expectTrickleCutAtTheBodyDeadline(port: port)
        }
    }
}
