@_exported public import EnclaveCore
internal import Foundation
internal import Synchronization
internal import _EnclaveChannel

#if canImport(Glibc)
internal import Glibc
#endif

/// A running enclave: a signed, measured image executing in its own sandboxed process.
///
/// ```swift
/// var options = Enclave.Options()
/// options.ocalls.register(Log.self) { line in print(line); return Empty() }
/// let enclave = try await Enclave.load(path: "HelloEnclave", options: options)
/// let greeting = try await enclave.call(Greet.self, "Ada")
/// await enclave.terminate()
/// ```
public final class Enclave: Sendable {
    /// How to load an enclave.
    public struct Options: Sendable {
        /// Allow enclaves signed as debuggable. Off by default: a debug enclave's secrets are not protected.
        public var debug = false
        /// The OCALLs this host serves.
        public var ocalls = OCallTable()
        /// The signature structure's path; defaults to the image path plus `.sig`.
        public var signaturePath: String?
        /// Arguments passed to the enclave process (untrusted input to it).
        public var arguments: [String] = []
        /// The largest call argument or result, in bytes.
        public var maxMessageSize = 64 << 20
        /// How long the enclave may take to start before the load fails.
        public var startTimeout: Duration = .seconds(30)
        /// The simulated platform that derives the enclave's keys and reports; `nil` opens the default one.
        public var platform: SimulatedPlatform?
        /// Where remote evidence comes from: by default configfs-tsm when this is a confidential VM that has it
        /// (see ``ConfigFSTSM/detect(root:fileSystem:)``), else the simulated platform.
        public var evidenceSource: EvidenceSource = .automatic
        /// Receives what the enclave writes to its standard error, one line at a time, escaped: control and format
        /// characters as `\u{…}`, a backslash as `\\`, lines cut at 4096 bytes. The enclave never holds the host's
        /// stderr. `nil` (the default) writes each line to the host's stderr as `enclave <pid>: <line>`.
        public var standardError: (@Sendable (String) -> Void)?
        /// How many OCALLs the enclave may have waiting or running at once; one more is refused with
        /// `limitExceeded` before the host creates a task for it.
        public var maxQueuedOCalls = 1024
        /// How many argument bytes those OCALLs may hold together (at least one maximum-size message is always
        /// accepted). A hostile enclave can make the host hold no more than this.
        public var maxQueuedOCallBytes = 256 << 20
        /// Switchless ECALLs through a call ring shared with the enclave (see ``Switchless``); `nil` (the default):
        /// every call goes over the enclave's channel.
        public var switchless: Switchless?
        /// Simulation only, insecure: start the enclave even where the kernel offers no Landlock, so that its process
        /// can read every file of the host's user (the simulated platform's root secret included). Off by default:
        /// the load then fails with `sandboxFailed`. `ENCLAVEKIT_ALLOW_UNCONFINED=1` in the host's environment does
        /// the same; each unconfined launch writes a warning to the host's standard error. Where Landlock is
        /// available the enclave is always confined.
        public var allowUnconfined = false
        /// Tests only: rewrites the start-up answer (the identity the loader measured) before it is sent, as a host
        /// patched to lie would. The enclave takes its identity from the platform and refuses to start when this
        /// answer disagrees.
        package var rewriteLaunchInfo: (@Sendable (inout LaunchProtocol.LaunchInfo) -> Void)?
        /// Tests only: runs after the image and its libraries are measured and checked, before the enclave's process
        /// starts — where someone who can write a library directory would swap a trusted file.
        package var afterMeasurement: (@Sendable () -> Void)?

        /// Default options: release enclaves only, no OCALLs, `IMAGE.sig` beside the image, 64 MiB messages, a
        /// 30-second start, the default simulated platform and automatic evidence.
        public init() {}
    }

    /// The verified, measured identity of the enclave.
    public let identity: EnclaveIdentity
    /// The signed configuration.
    public let config: EnclaveConfig
    /// The enclave's process ID.
    public let processID: Int32

    let peer: RPCPeer
    private let platformPeer: RPCPeer
    /// The switchless side, when enabled; `switchlessCalls` `nil` means every call.
    let switchless: SwitchlessCaller?
    private let switchlessCalls: Set<String>?
    /// `switchlessCalls` as a list when it is short: a few `==` on the call's name (equal literals compare by their
    /// bits) cost less than hashing the name for every call.
    private let switchlessCallList: [String]?
    private let encoder: BinaryEncoder
    private let decoder: BinaryDecoder

    private init(
        identity: EnclaveIdentity,
        config: EnclaveConfig,
        processID: Int32,
        peer: RPCPeer,
        platformPeer: RPCPeer,
        maxMessageSize: Int,
        switchless: SwitchlessCaller?,
        switchlessCalls: Set<String>?
    ) {
        self.identity = identity
        self.config = config
        self.processID = processID
        self.peer = peer
        self.platformPeer = platformPeer
        self.switchless = switchless
        self.switchlessCalls = switchlessCalls
        self.switchlessCallList = switchlessCalls.flatMap { $0.count <= 8 ? Array($0) : nil }
        self.encoder = BinaryEncoder(maxMessageSize: maxMessageSize)
        self.decoder = BinaryDecoder(maxMessageSize: maxMessageSize)
    }

    deinit {
        peer.channel.shutdown()
        platformPeer.channel.shutdown()
    }

    /// Verify, measure and start the enclave image at `path`.
    ///
    /// - Throws: `EnclaveError` — `invalidSignature` (missing, malformed or not verifying), `measurementMismatch`
    ///   (the image or a library differs from what was signed, or a library path no longer names the file measured
    ///   when the enclave's process confines itself), `debugNotAllowed`, `imageUnreadable`,
    ///   `sandboxFailed` (no Landlock to confine it with, see ``Options/allowUnconfined``), `launchFailed` or
    ///   `enclaveTerminated` (it died while starting).
    public static func load(path: String, options: Options = Options()) async throws -> Enclave {
        let signaturePath = options.signaturePath ?? path + ".sig"
        guard let signatureData = FileManager.default.contents(atPath: signaturePath) else {
            throw EnclaveError.invalidSignature("no signature structure at \(signaturePath): sign the image first")
        }
        let signature = try EnclaveSignature(bytes: [UInt8](signatureData))
        let config = signature.body.config
        if config.debug && !options.debug {
            throw EnclaveError.debugNotAllowed("the enclave is signed as debuggable; load it with debug mode on")
        }
        let image = try EnclaveImage(path: path)
        try image.check(against: signature.body.manifest)
        // The child grants each trusted file only while its path names the file measured here (device and inode).
        let trustedFiles = try image.trustedFiles.map { file throws(EnclaveError) in
            guard let identity = image.trustedFileIdentities[file.path] else {
                throw EnclaveError.measurementMismatch("\(file.path) was measured without its identity")
            }
            return (path: file.path, identity: identity)
        }
        options.afterMeasurement?()

        let imageFD = try Spawn.sealedMemoryFile(image.bytes, name: "enclave-image")
        defer { Spawn.closeFD(imageFD) }
        let platform = try options.platform ?? SimulatedPlatform.open()
        // The switchless call ring, created (and sealed against resizing) before the enclave exists; the enclave
        // gets it as fd 5 and maps it when asked to serve it.
        let ring = try options.switchless.map { switchless throws(EnclaveError) in
            try SwitchlessRing.create(
                slots: switchless.slots,
                ocallSlots: switchless.ocallSlots,
                capacity: switchless.slotCapacity,
                workerSpinMicroseconds: UInt32(clamping: switchless.workerSpinMicroseconds)
            )
        }
        defer { if let ring { Spawn.closeFD(ring.fd) } }
        // Room for a 1 MiB call in flight on the call channel (see CallFloor.channelSocketBufferBytes).
        let sockets = try Spawn.socketPair(bufferBytes: CallFloor.channelSocketBufferBytes)
        let platformSockets: (host: Int32, enclave: Int32)
        let errorPipe: (read: Int32, write: Int32)
        do {
            platformSockets = try Spawn.socketPair()
            do {
                errorPipe = try Spawn.pipe()
            } catch {
                Spawn.closeFD(platformSockets.host)
                Spawn.closeFD(platformSockets.enclave)
                throw error
            }
        } catch {
            Spawn.closeFD(sockets.host)
            Spawn.closeFD(sockets.enclave)
            throw error
        }
        let pid: Int32
        do {
            let name = (path as NSString).lastPathComponent
            pid = try Spawn.launch(
                imageFD: imageFD,
                arguments: [name] + options.arguments,
                channels: [sockets.enclave, platformSockets.enclave] + (ring.map { [$0.fd] } ?? []),
                standardError: errorPipe.write,
                memoryLimit: config.maxMemory,
                trustedFiles: trustedFiles,
                allowUnconfined: options.allowUnconfined
            )
        } catch {
            for fd in [
                sockets.host, sockets.enclave, platformSockets.host, platformSockets.enclave, errorPipe.read,
                errorPipe.write,
            ] {
                Spawn.closeFD(fd)
            }
            throw error
        }
        Spawn.closeFD(sockets.enclave)
        Spawn.closeFD(platformSockets.enclave)
        Spawn.closeFD(errorPipe.write)
        StandardErrorForwarder.start(
            fd: errorPipe.read,
            sink: options.standardError ?? StandardErrorForwarder.hostStandardError(pid: pid)
        )
        let tsm: ConfigFSTSM?
        switch options.evidenceSource {
        case .automatic: tsm = ConfigFSTSM.detect()
        case .simulated: tsm = nil
        case .configFSTSM(let chosen): tsm = chosen
        }
        let startup = StartupState(
            identity: signature.identity,
            manifest: signature.body.manifest,
            config: config,
            measured: image.trustedFileIdentities,
            image: try? FileIdentity(fd: imageFD),
            rewriteLaunchInfo: options.rewriteLaunchInfo
        )
        let platformPeer = PlatformService.start(
            platform: platform,
            tsm: tsm,
            identity: signature.identity,
            fd: platformSockets.host,
            admitted: { startup.mappingsChecked }
        )

        let channel = FrameChannel(fd: sockets.host, maxFrameSize: options.maxMessageSize + 1024)
        var handlers = options.ocalls.handlers
        handlers[LaunchProtocol.helloCall] = { bytes in try startup.hello(bytes) }
        handlers[LaunchProtocol.readyCall] = { _ in
            startup.ready()
            return try BinaryEncoder().encode(Empty())
        }
        let frozen = handlers
        let peer = RPCPeer(
            channel: channel,
            maxConcurrentRequests: 1024,
            maxQueuedRequests: options.maxQueuedOCalls,
            maxQueuedBytes: options.maxQueuedOCallBytes,
            closeReason: { _ in
                // A channel failed by its writer (the enclave read nothing for the stall limit) says so.
                let why = channel.writeFailure.map { "; \($0.reason)" } ?? ""
                return .enclaveTerminated("enclave process \(pid) \(Spawn.reap(pid, grace: 2))\(why)")
            },
            handler: { name, argument in
                guard let handler = frozen[name] else {
                    throw EnclaveError.unknownCall("the host has no OCALL named \"\(name)\"")
                }
                return try await handler(argument)
            }
        )
        // ECALL answers wake their caller directly (see RPCPeer.startCallerReads).
        peer.startCallerReads()
        let switchless = ring.map { ring in
            SwitchlessCaller(
                ring: ring.ring,
                spinNanoseconds: UInt64(max(0, options.switchless?.callerSpinMicroseconds ?? 0)) * 1000
            )
        }
        let enclave = Enclave(
            identity: signature.identity,
            config: config,
            processID: pid,
            peer: peer,
            platformPeer: platformPeer,
            maxMessageSize: options.maxMessageSize,
            switchless: switchless,
            switchlessCalls: options.switchless?.calls
        )
        try await startup.waitUntilReady(peer: peer, timeout: options.startTimeout)
        if let switchless {
            // The enclave's end fails every switchless call at once, waiting or spinning.
            Task { [peer] in switchless.fail(with: await peer.closed()) }
            Switchless.serveOCalls(ring: switchless.ring, handlers: options.ocalls.handlers)
            do {
                _ = try await peer.call(
                    name: SwitchlessRing.startCall,
                    argument: try options.switchless?.startArgument() ?? []
                )
            } catch {
                await enclave.terminate()
                throw EnclaveError.unavailable("the enclave did not start switchless calls: \(error)")
            }
        }
        return enclave
    }

    /// Make an ECALL.
    ///
    /// Runs on the caller's executor (`nonisolated(nonsending)`): a switchless call whose answer comes within the
    /// spin never leaves it (no hop to the global executor and back, and no async frame beyond the caller's: this
    /// function is inlined into its caller and only a call that must wait awaits anything); a regular call's sending
    /// and waiting run in the channel's own async functions as before.
    /// - Throws: `EnclaveError` — `callFailed` with the enclave's message when its handler threw,
    ///   `unknownCall`, `limitExceeded`, `malformedInput`, or `enclaveTerminated` when the process is gone.
    @inlinable
    public nonisolated(nonsending) func call<C: EnclaveCall>(
        _ call: C.Type,
        _ input: C.Input
    ) async throws
        -> C.Output
    {
        switch try beginCall(call, input) {
        case .answered(let result): return try decodeResult(call, result)
        case .pending(let slot, let sequence): return try await waitForSwitchless(call, slot: slot, sequence: sequence)
        case .regular(let argument): return try await regularCall(call, input, argument: argument)
        }
    }

    /// How ``call(_:_:)`` goes on after ``beginCall(_:_:)`` (not generic: a generic enum would cost a metadata
    /// lookup per call).
    @usableFromInline
    enum BegunCall {
        /// Answered through the switchless ring while the caller spun: the encoded result.
        case answered([UInt8])
        /// Posted to the ring, not answered within the spin.
        case pending(slot: Int, sequence: UInt64)
        /// A regular call over the channel, with the argument when it is already encoded.
        case regular([UInt8]?)
    }

    /// The part of ``call(_:_:)`` that needs no suspension: a switchless call up to the end of its spin.
    @usableFromInline
    func beginCall<C: EnclaveCall>(_ call: C.Type, _ input: C.Input) throws -> BegunCall {
        guard let switchless, isSwitchless(C.name) else { return .regular(nil) }
        let argument = try encoder.encode(input)
        switch try switchless.begin(name: C.name, argument: argument) {
        case .answered(let result): return .answered(result)
        case .pending(let slot, let sequence): return .pending(slot: slot, sequence: sequence)
        case .fallback: return .regular(argument)
        }
    }

    /// Decode the result of `call`.
    @usableFromInline
    func decodeResult<C: EnclaveCall>(_ call: C.Type, _ result: [UInt8]) throws -> C.Output {
        try CallCodec.decodeResult(call, result, decoder: decoder)
    }

    /// Wait for the answer to a switchless call ``beginCall(_:_:)`` left pending.
    @usableFromInline
    nonisolated(nonsending) func waitForSwitchless<C: EnclaveCall>(
        _ call: C.Type,
        slot: Int,
        sequence: UInt64
    ) async throws -> C.Output {
        guard let switchless else { throw EnclaveError.unavailable("switchless calls are not enabled") }
        let result = try await switchless.wait(slot: slot, sequence: sequence)
        return try CallCodec.decodeResult(call, result, decoder: decoder)
    }

    /// A call over the channel; `argument` is the encoded input when the caller has it already.
    @usableFromInline
    nonisolated(nonsending) func regularCall<C: EnclaveCall>(
        _ call: C.Type,
        _ input: C.Input,
        argument: [UInt8]?
    ) async throws -> C.Output {
        if argument == nil, let (id, sent) = try beginByteBlockCall(call, input) {
            return try CallCodec.decodeResult(call, try await peer.answer(to: id, sentBytes: sent), decoder: decoder)
        }
        let result = try await peer.call(name: C.name, argument: try argument ?? encoder.encode(input))
        return try CallCodec.decodeResult(call, result, decoder: decoder)
    }

    /// Whether the call named `name` goes through the switchless ring (when there is one).
    private func isSwitchless(_ name: String) -> Bool {
        if let list = switchlessCallList {
            for candidate in list where candidate == name { return true }
            return false
        }
        return switchlessCalls?.contains(name) ?? true
    }

    /// Send a call whose argument is a `[UInt8]` or `Data` straight from the caller's buffer, as the encoder would
    /// have written it (no copy into an encoded array: a 1 MiB argument is copied only by the kernel); `nil` for any
    /// other argument type.
    private func beginByteBlockCall<C: EnclaveCall>(_ call: C.Type, _ input: C.Input) throws -> (UInt64, Int)? {
        let limit = encoder.maxMessageSize
        if C.Input.self == [UInt8].self {
            return try unsafeBitCast(input, to: [UInt8].self).withUnsafeBytes { bytes in
                (try peer.beginCall(name: C.name, byteBlock: bytes, maxArgumentSize: limit), bytes.count)
            }
        }
        if C.Input.self == Data.self {
            return try unsafeBitCast(input, to: Data.self).withUnsafeBytes { bytes in
                (try peer.beginCall(name: C.name, byteBlock: bytes, maxArgumentSize: limit), bytes.count)
            }
        }
        return nil
    }

    /// What switchless calls have done so far; `nil` when they are not enabled (``Options/switchless``).
    public var switchlessCounters: SwitchlessCounters? {
        guard let counters = switchless?.counters else { return nil }
        return SwitchlessCounters(
            switchless: counters.switchless,
            spunThenSlept: counters.spunThenSlept,
            fallback: counters.fallback,
            corrupt: counters.corrupt
        )
    }

    /// Write `value` into 32-bit word `word` of switchless slot `slot`'s header (tests that corrupt the ring from
    /// the host's side: word 0 is the state, 3 the length).
    package func scribbleSwitchlessSlot(_ slot: Int, word: Int, value: UInt32) {
        switchless?.ring.scribble(slot: slot, word: word, value: value)
    }

    /// Switchless slot `slot`'s state, length and (up to the slot's capacity) data, as the enclave left them.
    package func switchlessSlot(_ slot: Int) -> (state: UInt32, length: UInt32, data: [UInt8])? {
        guard let ring = switchless?.ring, slot >= 0, slot < ring.totalSlots else { return nil }
        let snapshot = ring.snapshot(slot)
        return (snapshot.state, snapshot.length, ring.copyOut(slot, count: min(Int(snapshot.length), ring.capacity)))
    }

    /// How many times this host's waits on the enclave's channel spun and got bytes, and spun in vain (see the
    /// channel's spin policy: only while the enclave runs on another CPU).
    package var channelSpins: (paid: Int, ranOut: Int) { peer.channel.spin.outcomes }

    /// Where the enclave last said its sending thread runs (`nil` until it said so).
    package var enclaveCPU: Int? { peer.channel.spin.peer }

    /// Send raw bytes as the argument of `name`, bypassing the encoder (tests of hostile input).
    package func rawCall(name: String, argument: [UInt8]) async throws -> [UInt8] {
        try await peer.call(name: name, argument: argument)
    }

    /// Write raw bytes onto the channel, bypassing framing (tests of a corrupt stream).
    package func injectRawBytes(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { send(peer.channel.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Echo bytes through the enclave's channel reader, without marshaling (the transport floor).
    public func ping(_ payload: [UInt8] = []) async throws -> [UInt8] {
        try await peer.ping(payload)
    }

    /// Echo bytes through a switchless worker of the enclave, without marshaling (the call ring's transport floor).
    /// Takes the channel (``ping(_:)``) when no slot is free or `payload` does not fit one.
    /// - Throws: `EnclaveError.unavailable` when switchless calls are not enabled (``Options/switchless``).
    public nonisolated(nonsending) func switchlessPing(_ payload: [UInt8] = []) async throws -> [UInt8] {
        guard let switchless else { throw EnclaveError.unavailable("switchless calls are not enabled") }
        // As in `call`: the spin runs here; only a ping left pending suspends.
        switch try switchless.beginPing(payload) {
        case .answered(let echoed): return echoed
        case .pending(let slot, let sequence): return try await switchless.wait(slot: slot, sequence: sequence)
        case .fallback: return try await peer.ping(payload)
        }
    }

    /// Stop the enclave: close its channel, give it a moment to exit, then kill it. Pending calls fail.
    public func terminate() async {
        peer.channel.shutdown()
        platformPeer.channel.shutdown()
        _ = await peer.closed()
    }

    /// Wait until the enclave process ends; returns why.
    public func terminated() async -> EnclaveError { await peer.closed() }

    /// Whether the enclave process is gone.
    public var isTerminated: Bool { peer.closeError != nil }
}
