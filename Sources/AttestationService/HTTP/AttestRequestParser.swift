internal import EnclaveCore
internal import Foundation

/// The body of `POST /attest/{type}` in MAA's shape: `quote` or `report` (base64url), `runtimeData` and
/// `initTimeData` (`{data: base64url, dataType: "Binary"|"JSON"}`), `nonce`, `draftPolicyForAttestation`.
enum AttestRequestParser {
    static func parse(_ body: [UInt8], type: AttestationType) throws -> AttestationServiceCore.AttestRequest {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw ServiceError.badRequest("InvalidRequest", "the body is not a JSON object")
        }
        let evidenceText = (object["quote"] ?? object["report"] ?? object["evidence"]) as? String
        guard let evidenceText else {
            throw ServiceError.badRequest("InvalidRequest", "the body has no quote or report")
        }
        guard let evidence = Base64URL.decode(evidenceText), !evidence.isEmpty else {
            throw ServiceError.badRequest("InvalidBase64", "quote/report is not base64url")
        }
        func data(_ key: String) throws -> (data: [UInt8], json: Bool)? {
            guard let value = object[key] else { return nil }
            guard let fields = value as? [String: Any], let text = fields["data"] as? String else {
                throw ServiceError.badRequest("InvalidRequest", "\(key) is not {\"data\": base64url, \"dataType\": …}")
            }
            guard let bytes = Base64URL.decode(text) else {
                throw ServiceError.badRequest("InvalidBase64", "\(key).data is not base64url")
            }
            let dataType = (fields["dataType"] as? String) ?? "Binary"
            guard ["binary", "json"].contains(dataType.lowercased()) else {
                throw ServiceError.badRequest("InvalidRequest", "\(key).dataType must be Binary or JSON")
            }
            return (bytes, dataType.lowercased() == "json")
        }
        var request = AttestationServiceCore.AttestRequest(
            evidence: evidence,
            runtimeData: try data("runtimeData"),
            initTimeData: try data("initTimeData"),
            nonce: nil,
            draftPolicy: nil
        )
        if let nonce = object["nonce"] {
            guard let text = nonce as? String, text.utf8.count <= 1024 else {
                throw ServiceError.badRequest("InvalidRequest", "nonce is not a string of at most 1024 bytes")
            }
            request.nonce = text
        }
        if let draft = object["draftPolicyForAttestation"] {
            guard let text = draft as? String else {
                throw ServiceError.badRequest("InvalidRequest", "draftPolicyForAttestation is not a string")
            }
            request.draftPolicy = text
        }
        return request
    }
}
