internal import Foundation
internal import Synchronization
internal import _EnclaveChannel

/// The loader's side of the start-up handshake.
package final class StartupState: Sendable {
    let identity: EnclaveIdentity
    let manifest: EnclaveManifest
    let config: EnclaveConfig
    let measured: [String: FileIdentity]
    let image: FileIdentity?
    /// Tests only: see `Enclave.Options.rewriteLaunchInfo`.
    let rewriteLaunchInfo: (@Sendable (inout LaunchProtocol.LaunchInfo) -> Void)?
    private let state = Mutex<(ready: Bool, failure: EnclaveError?, waiter: CheckedContinuation<Void, any Error>?)>(
        (false, nil, nil)
    )
    /// Whether a hello arrived, and whether the mappings it reported passed the check.
    private let handshake = Mutex<(helloSeen: Bool, mappingsChecked: Bool)>((false, false))

    init(
        identity: EnclaveIdentity,
        manifest: EnclaveManifest,
        config: EnclaveConfig,
        measured: [String: FileIdentity],
        image: FileIdentity?,
        rewriteLaunchInfo: (@Sendable (inout LaunchProtocol.LaunchInfo) -> Void)? = nil
    ) {
        self.identity = identity
        self.manifest = manifest
        self.config = config
        self.measured = measured
        self.image = image
        self.rewriteLaunchInfo = rewriteLaunchInfo
    }

    /// Whether the loader has checked the enclave's mappings and found them measured. Until then the platform
    /// answers nothing.
    var mappingsChecked: Bool { handshake.withLock { $0.mappingsChecked } }

    /// Check what the enclave mapped against the manifest; answer with its identity. Only one hello is served.
    func hello(_ bytes: ArraySlice<UInt8>) throws -> [UInt8] {
        let first = handshake.withLock { state -> Bool in
            defer { state.helloSeen = true }
            return !state.helloSeen
        }
        guard first else {
            let failure = EnclaveError.protocolViolation("the enclave sent a second start-up hello")
            finish(failure)
            throw failure
        }
        let hello: LaunchProtocol.Hello
        do {
            hello = try BinaryDecoder(maxMessageSize: 1 << 20).decode(LaunchProtocol.Hello.self, from: bytes)
        } catch {
            let failure = EnclaveError.protocolViolation("malformed start-up hello: \(error)")
            finish(failure)
            throw failure
        }
        if let failure = Self.checkMappings(hello.mappedFiles, against: manifest)
            ?? Self.checkIdentities(hello, measured: measured, image: image, against: manifest)
        {
            finish(failure)
            throw failure
        }
        handshake.withLock { $0.mappingsChecked = true }
        var launch = LaunchProtocol.LaunchInfo(identity: identity, maxThreads: config.maxThreads)
        rewriteLaunchInfo?(&launch)
        return try BinaryEncoder().encode(launch)
    }

    /// Every file mapped into the enclave must be the sealed image or a trusted file of the signed manifest.
    package static func checkMappings(_ mapped: [String], against manifest: EnclaveManifest) -> EnclaveError? {
        let allowed = Set(manifest.trustedFiles.map(\.path))
        for file in mapped where !allowed.contains(file) && !file.hasPrefix("/memfd:enclave-image") {
            return .measurementMismatch("the enclave mapped \(file), which is not in its signed manifest")
        }
        return nil
    }

    /// Every file the enclave mapped must be the very file the loader measured — same device and inode, so a
    /// library swapped between measurement and mapping is refused — and must still have its signed digest now that
    /// it is mapped, so one rewritten in place is refused too. The sealed image must be the loader's memory file.
    package static func checkIdentities(
        _ hello: LaunchProtocol.Hello,
        measured: [String: FileIdentity],
        image: FileIdentity?,
        against manifest: EnclaveManifest
    ) -> EnclaveError? {
        guard Set(hello.mappings.map(\.path)) == Set(hello.mappedFiles) else {
            return .measurementMismatch("the enclave's mapping report does not name each mapped file's inode")
        }
        let digests = Dictionary(manifest.trustedFiles.map { ($0.path, $0.digest) }, uniquingKeysWith: { a, _ in a })
        var verified = Set<String>()
        for mapping in hello.mappings {
            if mapping.path.hasPrefix("/memfd:enclave-image") {
                guard let image, image.matches(mapping) else {
                    return .measurementMismatch(
                        "the enclave runs \(mapping.path), not the sealed image the loader made"
                    )
                }
                continue
            }
            guard let digest = digests[mapping.path] else {
                return .measurementMismatch("the enclave mapped \(mapping.path), which is not in its signed manifest")
            }
            guard let identity = measured[mapping.path], identity.matches(mapping) else {
                return .measurementMismatch(
                    "\(mapping.path) was replaced between measurement and mapping (the enclave mapped inode "
                        + "\(mapping.inode) on \(mapping.device))"
                )
            }
            guard verified.insert(mapping.path).inserted else { continue }
            guard let (current, now) = try? FileIdentity.digest(mapping.path), now.matches(mapping) else {
                return .measurementMismatch("\(mapping.path) was replaced after the enclave mapped it")
            }
            guard current == digest else {
                return .measurementMismatch("\(mapping.path) changed between measurement and mapping")
            }
        }
        return nil
    }

    func ready() { finish(nil) }

    private func finish(_ failure: EnclaveError?) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            guard !state.ready && state.failure == nil else { return nil }
            if let failure { state.failure = failure } else { state.ready = true }
            defer { state.waiter = nil }
            return state.waiter
        }
        if let failure { waiter?.resume(throwing: failure) } else { waiter?.resume() }
    }

    func waitUntilReady(peer: RPCPeer, timeout: Duration) async throws {
        let watchdog = Task {
            try await Task.sleep(for: timeout)
            self.finish(.launchFailed("the enclave did not start within \(timeout)"))
        }
        let closer = Task {
            let reason = await peer.closed()
            self.finish(reason)
        }
        defer {
            watchdog.cancel()
            closer.cancel()
        }
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let immediate = state.withLock { state -> Result<Void, EnclaveError>? in
                    if state.ready { return .success(()) }
                    if let failure = state.failure { return .failure(failure) }
                    state.waiter = continuation
                    return nil
                }
                if let immediate { continuation.resume(with: immediate) }
            }
        } catch {
            peer.channel.shutdown()
            throw error
        }
    }
}
