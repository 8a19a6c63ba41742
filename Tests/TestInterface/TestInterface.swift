public import EnclaveCore

// The calls Tests/TestEnclave serves, shared by the enclave and the host tests.

public enum Echo: EnclaveCall {
    public typealias Input = [UInt8]
    public typealias Output = [UInt8]
    public static var name: String { "test.echo" }
}

public enum Identity: EnclaveCall {
    public typealias Input = Empty
    public typealias Output = EnclaveIdentity
    public static var name: String { "test.identity" }
}

public enum Attempt: EnclaveCall {
    public typealias Input = String
    public typealias Output = Int32
    public static var name: String { "test.attempt" }
}

/// Takes and returns nothing, served by a synchronous handler that counts its runs (``CountedNothingRuns`` reads the
/// count): the call the enclave answers without the codec's generic layers.
public enum CountedNothing: EnclaveCall {
    public typealias Input = Empty
    public typealias Output = Empty
    public static var name: String { "test.countedNothing" }
}

/// How many times ``CountedNothing``'s handler ran.
public enum CountedNothingRuns: EnclaveCall {
    public typealias Input = Empty
    public typealias Output = Int
    public static var name: String { "test.countedNothingRuns" }
}

public enum Crash: EnclaveCall {
    public typealias Input = String
    public typealias Output = Empty
    public static var name: String { "test.crash" }
}

public enum Sleep: EnclaveCall {
    public typealias Input = UInt64
    public typealias Output = Int
    public static var name: String { "test.sleep" }
}

public enum Fail: EnclaveCall {
    public typealias Input = String
    public typealias Output = Empty
    public static var name: String { "test.fail" }
}

public enum AskHost: EnclaveCall {
    public typealias Input = String
    public typealias Output = String
    public static var name: String { "test.askHost" }
}

public enum HostTransform: EnclaveCall {
    public typealias Input = String
    public typealias Output = String
    public static var name: String { "test.hostTransform" }
}

public struct SealRequest: Codable, Sendable {
    public var plaintext: [UInt8]
    public var policy: SealPolicy
    public var additionalData: [UInt8]
    public init(plaintext: [UInt8], policy: SealPolicy, additionalData: [UInt8] = []) {
        self.plaintext = plaintext
        self.policy = policy
        self.additionalData = additionalData
    }
}

public enum Seal: EnclaveCall {
    public typealias Input = SealRequest
    public typealias Output = [UInt8]
    public static var name: String { "test.seal" }
}

public enum Unseal: EnclaveCall {
    public typealias Input = [UInt8]
    public typealias Output = [UInt8]
    public static var name: String { "test.unseal" }
}

public struct StreamRequest: Codable, Sendable {
    public var bytes: [UInt8]
    public var chunkSize: Int
    public var policy: SealPolicy
    public init(bytes: [UInt8], chunkSize: Int, policy: SealPolicy = .signerID) {
        self.bytes = bytes
        self.chunkSize = chunkSize
        self.policy = policy
    }
}

/// Seal `bytes` as a stream; answers the header and the chunks, each as its own element.
public enum SealStream: EnclaveCall {
    public typealias Input = StreamRequest
    public typealias Output = [[UInt8]]
    public static var name: String { "test.sealStream" }
}

/// Open a sealed stream fed in pieces of `chunkSize` bytes.
public enum UnsealStream: EnclaveCall {
    public typealias Input = StreamRequest
    public typealias Output = [UInt8]
    public static var name: String { "test.unsealStream" }
}

public enum GetTargetInfo: EnclaveCall {
    public typealias Input = Empty
    public typealias Output = TargetInfo
    public static var name: String { "test.targetInfo" }
}

public struct ReportRequest: Codable, Sendable {
    public var target: TargetInfo
    public var reportData: [UInt8]
    public init(target: TargetInfo, reportData: [UInt8]) {
        self.target = target
        self.reportData = reportData
    }
}

public enum MakeReport: EnclaveCall {
    public typealias Input = ReportRequest
    public typealias Output = [UInt8]
    public static var name: String { "test.makeReport" }
}

/// Verify a report for this enclave; answers the reporter's identity.
public enum CheckReport: EnclaveCall {
    public typealias Input = [UInt8]
    public typealias Output = EnclaveIdentity
    public static var name: String { "test.checkReport" }
}

/// Remote evidence binding the given report data.
public enum Evidence: EnclaveCall {
    public typealias Input = [UInt8]
    public typealias Output = AttestationEvidence
    public static var name: String { "test.evidence" }
}

/// An operation a compromised enclave might try against another process (`target`, e.g. the host's pid) or
/// against its own confinement.
public struct AttemptRequest: Codable, Sendable {
    public var operation: String
    public var target: Int32
    public init(operation: String, target: Int32 = 0) {
        self.operation = operation
        self.target = target
    }
}

/// Try the operation from inside the enclave; answers 0 when it succeeded, else the errno it failed with.
public enum AttemptAgainst: EnclaveCall {
    public typealias Input = AttemptRequest
    public typealias Output = Int32
    public static var name: String { "test.attemptAgainst" }
}

/// Write these bytes to the enclave's standard error, unfiltered.
public enum WriteStandardError: EnclaveCall {
    public typealias Input = [UInt8]
    public typealias Output = Empty
    public static var name: String { "test.writeStandardError" }
}

/// What the platform answered to a key request the enclave sent before its start-up handshake (when started with
/// ``EarlyPlatformRequest/argument``): `granted <n> bytes`, `refused: <message>`, or `not attempted`.
public enum EarlyPlatformRequest: EnclaveCall {
    public typealias Input = Empty
    public typealias Output = String
    public static var name: String { "test.earlyPlatformRequest" }
    /// The enclave argument that makes it ask the platform for a key before the loader has checked its mappings.
    public static let argument = "--platform-request-before-hello"
}

/// Make `count` concurrent OCALLs to ``HostTransform`` with `size`-byte arguments; answers how many failed with
/// `limitExceeded`.
public struct FloodRequest: Codable, Sendable {
    public var count: Int
    public var size: Int
    public init(count: Int, size: Int) {
        self.count = count
        self.size = size
    }
}

public enum FloodHost: EnclaveCall {
    public typealias Input = FloodRequest
    public typealias Output = Int
    public static var name: String { "test.floodHost" }
}

/// Run every Swift concurrency construct an application may use (`Task {}`, `Task.detached`, `Task.sleep`,
/// `async let`, task groups, `withCheckedContinuation`, actors, `AsyncStream`, the main actor) for each of
/// `iterations` iterations, several at a time; answers the sum of ``expected(iteration:)`` the enclave computed.
public enum ConcurrencyWorkout: EnclaveCall {
    public typealias Input = Int
    public typealias Output = Int
    public static var name: String { "test.concurrencyWorkout" }

    /// What one iteration adds to the answer; the host recomputes the sum from this.
    public static func expected(iteration i: Int) -> Int {
        let unstructured = i &* 3 + (i &+ 7) + 1
        let asyncLet = i &* 2 + (i % 1000) * (i % 1000)
        let group = 4 &* i + 6
        let continuation = i ^ 0x55
        let actor = i &* 5
        let stream = 3 &* i + 3
        let main = i & 0xff
        return unstructured + asyncLet + group + continuation + actor + stream + main
    }
}

/// The thread ID `@MainActor` code runs on inside the enclave (its main thread's is the process ID).
public enum MainActorThread: EnclaveCall {
    public typealias Input = Empty
    public typealias Output = Int32
    public static var name: String { "test.mainActorThread" }
}

/// Sleep with `Task.sleep` for the given microseconds, alongside 100 shorter and longer sleepers; answers the
/// microseconds the requested sleep took.
public enum SleepProbe: EnclaveCall {
    public typealias Input = Int
    public typealias Output = Int
    public static var name: String { "test.sleepProbe" }
}

/// Write a 32-bit value into a word of a switchless slot's header, from inside the enclave (tests of a corrupt
/// call ring): maps the ring the host passed and stores `value` at word `word` of slot `slot`.
public struct ScribbleRequest: Codable, Sendable {
    public var slot: Int
    public var word: Int
    public var value: UInt32

    public init(slot: Int, word: Int, value: UInt32) {
        self.slot = slot
        self.word = word
        self.value = value
    }
}

public enum ScribbleSwitchlessRing: EnclaveCall {
    public typealias Input = ScribbleRequest
    public typealias Output = Empty
    public static var name: String { "test.scribbleSwitchlessRing" }
}

/// What ``ReleaseKeyProbe`` asks the key broker for (issue 12 item 7, through `EnclaveKeyRelease`'s `releaseKey`).
public struct ReleaseKeyRequest: Codable, Sendable {
    /// The key's name.
    public var name: String
    /// The key's version; `nil` for the current one.
    public var version: String?
    /// The broker's release signing key, P-256 raw (x ‖ y, 64 bytes), pinned by the test.
    public var brokerKey: [UInt8]
    /// The attestation service's challenge, if the host fetched one.
    public var challenge: String?
    /// A nonce for the broker to check.
    public var nonce: String?

    public init(name: String, version: String?, brokerKey: [UInt8], challenge: String? = nil, nonce: String? = nil) {
        self.name = name
        self.version = version
        self.brokerKey = brokerKey
        self.challenge = challenge
        self.nonce = nonce
    }
}

/// What ``ReleaseKeyProbe`` answers: the released key's names and the SHA-256 of its bytes (never the bytes).
public struct ReleaseKeyResult: Codable, Sendable {
    public var keyID: String
    public var keyType: String
    public var digest: [UInt8]

    public init(keyID: String, keyType: String, digest: [UInt8]) {
        self.keyID = keyID
        self.keyType = keyType
        self.digest = digest
    }
}

/// Get a key released by the key broker through `releaseKey` (its OCALLs `keyrelease.attest` and
/// `keyrelease.fetch` are the host's to serve); answers its SHA-256.
public enum ReleaseKeyProbe: EnclaveCall {
    public typealias Input = ReleaseKeyRequest
    public typealias Output = ReleaseKeyResult
    public static var name: String { "test.releaseKey" }
}
