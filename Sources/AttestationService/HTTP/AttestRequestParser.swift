internal import AttestationAPI
internal import EnclaveCore
internal import Foundation

/// The body of `POST /attest/{type}` (``AttestationAPI/AttestRequest``, MAA's shape) decoded and checked: the
/// evidence (`quote` or `report`, base64url), `runtimeData` and `initTimeData` (`{data: base64url, dataType:
/// "Binary"|"JSON"}`), `nonce` (at most 1 KiB), `draftPolicyForAttestation`. Each refusal is `InvalidRequest` or
/// `InvalidBase64` naming the member.
enum AttestRequestParser {
    /// The longest `nonce` accepted, in UTF-8 bytes.
    static let maxNonceBytes = 1024

    static func parse(_ body: [UInt8], type: AttestationType) throws -> AttestationServiceCore.AttestRequest {
        let wire: AttestRequest
        do {
            wire = try WireJSON.decode(AttestRequest.self, from: body)
        } catch let error as DecodingError {
            throw refusal(error)
        } catch {
            throw ServiceError.badRequest("InvalidRequest", "the body is not a JSON object")
        }
        guard let evidenceText = wire.evidenceText else {
            throw ServiceError.badRequest("InvalidRequest", "the body has no quote or report")
        }
        guard let evidence = Base64URL.decode(evidenceText), !evidence.isEmpty else {
            throw ServiceError.badRequest("InvalidBase64", "quote/report is not base64url")
        }
        func data(_ key: String, _ value: AttestRequest.TypedData?) throws -> (data: [UInt8], json: Bool)? {
            guard let value else { return nil }
            guard let bytes = Base64URL.decode(value.data) else {
                throw ServiceError.badRequest("InvalidBase64", "\(key).data is not base64url")
            }
            let dataType = (value.dataType ?? "Binary").lowercased()
            guard dataType == "binary" || dataType == "json" else {
                throw ServiceError.badRequest("InvalidRequest", "\(key).dataType must be Binary or JSON")
            }
            return (bytes, dataType == "json")
        }
        if let nonce = wire.nonce, nonce.utf8.count > maxNonceBytes {
            throw ServiceError.badRequest("InvalidRequest", Self.nonceMessage)
        }
        return AttestationServiceCore.AttestRequest(
            evidence: evidence,
            runtimeData: try data("runtimeData", wire.runtimeData),
            initTimeData: try data("initTimeData", wire.initTimeData),
            nonce: wire.nonce,
            draftPolicy: wire.draftPolicyForAttestation
        )
    }

    static let nonceMessage = "nonce is not a string of at most \(maxNonceBytes) bytes"

    /// The refusal of a body that does not decode, naming the member at fault.
    static func refusal(_ error: DecodingError) -> ServiceError {
        let path: [any CodingKey]
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            path = context.codingPath
        case .keyNotFound(_, let context):
            path = context.codingPath
        @unknown default:
            path = []
        }
        let message =
            switch path.first?.stringValue {
            case nil: "the body is not a JSON object"
            case "quote", "report", "evidence": "\(path[0].stringValue) is not a string"
            case let key? where key == "runtimeData" || key == "initTimeData":
                "\(key) is not {\"data\": base64url, \"dataType\": …}"
            case "nonce": nonceMessage
            case "draftPolicyForAttestation": "draftPolicyForAttestation is not a string"
            case let key?: "\(key) is not valid"
            }
        return ServiceError.badRequest("InvalidRequest", message)
    }
}
