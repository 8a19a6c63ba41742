import AttestationAPI
import AttestationClient
import EnclaveCore
import Foundation
import KeyReleaseFormats
import _CryptoExtras

/// What an owner's client wraps for a raw `POST /keys/{name}/import`: the AES key under its import intent for a
/// broker trusting one authority (`authority` with the certificate in `certificateFile`, PEM).
enum OwnerImportIntent {
    static func wrapped(
        _ secret: [UInt8],
        name: String,
        policy: KeyReleasePolicy,
        to importKey: _RSA.Encryption.PublicKey,
        authority: String,
        certificateFile: String
    ) throws -> [UInt8] {
        let pem = try String(contentsOfFile: certificateFile, encoding: .utf8)
        let body = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        guard let der = Data(base64Encoded: body), let url = KeyBrokerClient.normalizeAuthority(authority),
            let policyBytes = Base64URL.decode(policy.data)
        else { throw EnclaveError.malformedInput("the authority certificate, URL or policy does not decode") }
        let intent = ImportIntent(
            name: name,
            type: "oct-256",
            operations: [],
            exportable: true,
            immutable: policy.immutable ?? false,
            releasePolicy: policyBytes,
            pins: [url: [KeyBrokerClient.thumbprint(Array(der))]]
        )
        return try RSAAESKeyWrap.wrap(intent.payload(secret), to: importKey)
    }
}
