import Crypto
import EnclaveCore
import EnclaveKeyRelease
import EnclaveRuntime
import KeyEnvelope
import KeyReleaseFormats
import SecretProcessingInterface
import _CryptoExtras

/// Processes a data owner's encrypted file: the key is released to this enclave by the key broker (only if its
/// attested identity satisfies the owner's release policy), the file is decrypted, summarised and the summary
/// re-encrypted to the owner here; the host carries only the encrypted file, evidence, tokens and wrapped keys.
@main
struct SecretProcessingEnclave: EnclaveApplication {
    /// The largest file processed (the ECALL carries it whole).
    static let maxFileSize = 16 << 20

    let context: EnclaveContext

    init(context: EnclaveContext) {
        self.context = context
    }

    func register(_ calls: inout ECallTable) {
        let context = self.context
        calls.register(ProcessSecret.self) { request in try await Self.process(request, context: context) }
    }

    static func process(_ request: ProcessRequest, context: EnclaveContext) async throws -> ProcessResult {
        guard request.file.count <= maxFileSize else { throw EnclaveError.limitExceeded("the file is over 16 MiB") }
        let header = try Envelope.header(of: request.file)
        guard let (name, version) = header.keyNameAndVersion, name == request.keyName else {
            throw EnclaveError.invalidSignature("the file is encrypted under \(header.keyID), not \(request.keyName)")
        }
        let brokerKey: P256.Signing.PublicKey
        do { brokerKey = try P256.Signing.PublicKey(rawRepresentation: request.brokerKey) } catch {
            throw EnclaveError.malformedInput("the broker key is not a raw P-256 public key")
        }
        // Attest, have the host carry evidence and token, unwrap the key here.
        let released = try await context.releaseKey(name: name, version: version, brokerKey: brokerKey)
        let owner = try OwnerKey(released)
        let plaintext = try Envelope.decrypt(request.file, dataKey: try owner.unwrap(header))
        let statistics: ColumnStatistics
        do { statistics = try ColumnStatistics(csv: plaintext) } catch {
            throw EnclaveError.malformedInput("the decrypted file is not a CSV table: \(error)")
        }
        // The result goes back to the owner under the same key: the data key wrapped to it, a fresh file ID.
        let dataKey = Envelope.newDataKey()
        let resultHeader = EnvelopeHeader(
            algorithm: owner.algorithm,
            keyID: released.keyID,
            wrappedKey: try owner.wrap(dataKey),
            fileID: Envelope.newFileID(),
            chunkSize: Envelope.defaultChunkSize
        )
        return ProcessResult(
            result: try Envelope.encrypt(Array(statistics.csv.utf8), header: resultHeader, dataKey: dataKey),
            keyID: released.keyID,
            rows: statistics.rows,
            columns: statistics.columns.count
        )
    }
}
