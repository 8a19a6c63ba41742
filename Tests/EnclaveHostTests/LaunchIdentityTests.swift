import EnclaveHost
import Foundation
import Synchronization
import TestInterface
import Testing

/// The enclave's identity comes from the platform, not from the host's start-up answer: a host that lies about it
/// (patched here through `Enclave.Options.rewriteLaunchInfo`) makes the enclave refuse to start, where before the
/// enclave believed it and sealed, joined and checked contracts under the lie (review 6, F).
@Suite("Launch identity: measured by the platform, not told by the host")
struct LaunchIdentityTests {
    /// The ways a patched host can lie in its start-up answer.
    enum Lie: String, CaseIterable, Sendable {
        /// The reviewer's patch: another signer, product 42, security version 0, debug on.
        case signerProductVersionDebug
        /// Only a lower security version (blobs would be sealed at it).
        case securityVersion
        /// Only the debug attribute.
        case debug
        /// Another uniqueID (a report for it is MACed with another enclave's key).
        case uniqueID

        /// Rewrite `identity` as the patched host does; `other` is the digest it claims instead of a real one.
        func apply(to identity: inout EnclaveIdentity, other: Digest32) {
            switch self {
            case .signerProductVersionDebug:
                identity.signerID = other
                identity.productID = 42
                identity.securityVersion = 0
                identity.attributes.insert(.debug)
            case .securityVersion: identity.securityVersion = 0
            case .debug: identity.attributes.insert(.debug)
            case .uniqueID: identity.uniqueID = other
            }
        }
    }

    @Test(arguments: Lie.allCases)
    func aHostThatLiesAboutTheIdentityIsRefused(_ lie: Lie) async throws {
        let signed = try Fixtures.sign(config: EnclaveConfig(productID: 1, securityVersion: 1))
        var options = Fixtures.options(signed)
        let other = try Digest32(bytes: [UInt8](repeating: 0xAB, count: 32))
        options.rewriteLaunchInfo = { launch in lie.apply(to: &launch.identity, other: other) }
        let lines = Mutex<[String]>([])
        options.standardError = { line in lines.withLock { $0.append(line) } }
        do {
            let enclave = try await Enclave.load(path: signed.image, options: options)
            let believed = try? await enclave.call(Identity.self, Empty())
            await enclave.terminate()
            Issue.record("the enclave started on the host's lie (\(lie)); it believes \(String(describing: believed))")
            return
        } catch let error as EnclaveError {
            #expect(error.code == .enclaveTerminated, "\(error)")
        }
        // The enclave says why on its stderr; the pipe may be read after the load failed (30 s at most).
        let deadline = ContinuousClock.now + .seconds(30)
        let refusal = { @Sendable (line: String) in
            line.contains("measurementMismatch") && line.contains("start-up answer")
        }
        while !lines.withLock({ $0.contains(where: refusal) }) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let received = lines.withLock { $0 }
        #expect(received.contains(where: refusal), "\(received)")
    }

    /// The rewrite hook left alone (an honest host), the enclave starts and sees the identity the loader measured.
    @Test func anHonestHostStartsTheEnclaveWithTheMeasuredIdentity() async throws {
        let signed = try Fixtures.sign(config: EnclaveConfig(productID: 7, securityVersion: 3))
        var options = Fixtures.options(signed)
        options.rewriteLaunchInfo = { _ in }
        let enclave = try await Enclave.load(path: signed.image, options: options)
        #expect(try await enclave.call(Identity.self, Empty()) == signed.identity)
        await enclave.terminate()
    }
}
