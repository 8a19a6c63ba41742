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

    /// Register the state OCALLs (``CleanRoomLoadState``, ``CleanRoomSaveState``) over `directory`.
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
