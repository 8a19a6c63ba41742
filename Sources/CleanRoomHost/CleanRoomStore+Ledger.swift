public import CleanRoomInterface
internal import EnclaveCore
public import EnclaveHost
internal import Foundation

/// The clean room's sealed durable state (privacy budget ledger, receipt chain head), kept for the enclave under
/// `state/` in the data directory: one file per contract, replaced atomically (written to a temporary file, synced,
/// renamed, directory synced) so a crash leaves the old state or the new one, never a torn one.
///
/// The host can't read or forge it (sealed to the clean room's signer); it could restore an older copy, which the
/// enclave refuses when a rollback counter is configured.
extension CleanRoomStore {
    /// The file holding `contractID`'s sealed state, or nil when the ID is not 64 lower-case hex characters.
    public static func statePath(directory: String, contractID: String) -> String? {
        guard contractID.utf8.count == 64,
            contractID.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        else { return nil }
        return directory + "/state/" + contractID + ".sealed"
    }

    /// Register the state OCALLs (`CleanRoomLoadState`, `CleanRoomSaveState`) over `directory`.
    public static func registerStateCalls(_ table: inout OCallTable, directory: String) {
        table.register(CleanRoomLoadState.self) { request in
            let path = try requirePath(directory: directory, request.contractID)
            guard FileManager.default.fileExists(atPath: path) else { return .init(contractID: request.contractID) }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw EnclaveError.callFailed("the clean room state file is unreadable")
            }
            guard data.count <= CleanRoomStateBlob.maxBytes else {
                throw EnclaveError.limitExceeded("the clean room state file is over 1 MiB")
            }
            return .init(contractID: request.contractID, blob: Array(data))
        }
        table.register(CleanRoomSaveState.self) { request in
            let path = try requirePath(directory: directory, request.contractID)
            guard !request.blob.isEmpty, request.blob.count <= CleanRoomStateBlob.maxBytes else {
                throw EnclaveError.limitExceeded("the sealed state is empty or over 1 MiB")
            }
            try SecretFile.prepareDirectory(directory + "/state", what: "clean room state directory")
            let temporary = path + ".tmp-" + UUID().uuidString
            guard
                FileManager.default.createFile(
                    atPath: temporary,
                    contents: nil,
                    attributes: [.posixPermissions: 0o600]
                ),
                let file = FileHandle(forWritingAtPath: temporary)
            else { throw EnclaveError.callFailed("cannot create the clean room state file") }
            var renamed = false
            defer { if !renamed { try? FileManager.default.removeItem(atPath: temporary) } }
            do {
                try file.write(contentsOf: request.blob)
                try file.synchronize()
                try file.close()
            } catch {
                try? file.close()
                throw EnclaveError.callFailed("cannot write the clean room state file")
            }
            guard rename(temporary, path) == 0 else {
                throw EnclaveError.callFailed("cannot replace the clean room state file")
            }
            renamed = true
            // The rename itself made durable: sync the directory.
            if let folder = FileHandle(forReadingAtPath: directory + "/state") {
                try? folder.synchronize()
                try? folder.close()
            }
            return Empty()
        }
    }

    private static func requirePath(directory: String, _ contractID: String) throws -> String {
        guard let path = statePath(directory: directory, contractID: contractID) else {
            throw EnclaveError.malformedInput("not a contract ID")
        }
        return path
    }
}

/// How the clean room's host reaches the key broker's rollback counter for the enclave (`CleanRoomCounter`): the
/// broker's signing key (from its attestation: the key of its signing certificate), reads, and increments that carry
/// the clean room's current attestation token (`POST /counters/{contract}/increment` with `Authorization: Bearer`).
/// The host only carries bytes: the enclave checks every answer's signature and nonce.
public struct CleanRoomCounterLink: Sendable {
    /// The broker's signing public key, raw x‖y (64 bytes).
    public var brokerKey: @Sendable () async throws -> [UInt8]
    /// `GET /counters/{contract}?nonce=`.
    public var read: @Sendable (_ contract: String, _ nonce: String) async throws -> CleanRoomCounterAnswer
    /// `POST /counters/{contract}/increment`, carrying the enclave's `signature` over the increment (raw r‖s; nil
    /// when the enclave sent none, which the broker refuses).
    public var increment:
        @Sendable (
            _ contract: String, _ nonce: String, _ expected: UInt64, _ state: String, _ signature: [UInt8]?
        ) async throws -> CleanRoomCounterAnswer

    /// A link over these three calls.
    public init(
        brokerKey: @escaping @Sendable () async throws -> [UInt8],
        read: @escaping @Sendable (String, String) async throws -> CleanRoomCounterAnswer,
        increment: @escaping @Sendable (String, String, UInt64, String, [UInt8]?) async throws -> CleanRoomCounterAnswer
    ) {
        self.brokerKey = brokerKey
        self.read = read
        self.increment = increment
    }
}

extension CleanRoomStore {
    /// Register `CleanRoomCounter` over `link` (requests bounded: a hex contract ID, a short nonce, a hex digest, a
    /// 64-byte signature).
    /// Without it the enclave has no rollback counter and says so in its evidence (no `counterKey`).
    public static func registerCounterCalls(_ table: inout OCallTable, link: CleanRoomCounterLink) {
        table.register(CleanRoomCounter.self) { request in
            guard statePath(directory: "", contractID: request.contractID) != nil, request.nonce.utf8.count <= 128,
                request.state.utf8.count <= 64, (request.requestSignature?.count ?? 0) <= 64
            else { throw EnclaveError.malformedInput("not a counter request") }
            switch request.operation {
            case "key":
                return CleanRoomCounterAnswer(
                    value: 0,
                    state: "",
                    nonce: "",
                    signature: [],
                    key: try await link.brokerKey()
                )
            case "read":
                return try await link.read(request.contractID, request.nonce)
            case "increment":
                return try await link.increment(
                    request.contractID,
                    request.nonce,
                    request.expected,
                    request.state,
                    request.requestSignature
                )
            default:
                throw EnclaveError.malformedInput("not a counter operation")
            }
        }
    }
}
