internal import EnclaveCore

/// The body of `POST /attest/{type}` in Azure Attestation's shape:
/// `{"quote":…,"runtimeData":{"data":…,"dataType":…},"initTimeData":…,"draftPolicyForAttestation":…,"nonce":…}`.
///
/// The evidence travels base64url-encoded as `quote` (SGX, TDX and simulated quotes) or `report` (SEV-SNP's and
/// Open Enclave's documents): ``evidenceField(route:)`` says which. Absent members are left out of the JSON.
public struct AttestRequest: Codable, Hashable, Sendable {
    /// Data the attester binds, as MAA carries it: `{"data": base64url, "dataType": "Binary"|"JSON"}`.
    public struct TypedData: Codable, Hashable, Sendable {
        /// `dataType`'s values.
        public enum DataType: String, Codable, Hashable, Sendable {
            /// The bytes as they are.
            case binary = "Binary"
            /// A JSON document, whose members become claims.
            case json = "JSON"
        }

        /// The bytes, base64url.
        public var data: String
        /// `Binary` or `JSON` (case-insensitive on the service; absent means `Binary`).
        public var dataType: String?

        /// Data of `dataType` carrying `bytes`.
        public init(bytes: [UInt8], dataType: DataType) {
            self.data = Base64URL.encode(bytes)
            self.dataType = dataType.rawValue
        }

        /// Data as the wire spells it.
        public init(data: String, dataType: String?) {
            self.data = data
            self.dataType = dataType
        }
    }

    /// The evidence (base64url) for the `quote` routes.
    public var quote: String?
    /// The evidence (base64url) for the `report` routes.
    public var report: String?
    /// The evidence (base64url) under the field name older clients used; read only when `quote` and `report` are
    /// absent.
    public var evidence: String?
    /// Runtime data the evidence's report data binds (its SHA-256 leads the report data).
    public var runtimeData: TypedData?
    /// Data fixed at the enclave's creation (SEV-SNP's host data, TDX's MRCONFIGID).
    public var initTimeData: TypedData?
    /// A policy to evaluate instead of the stored one, for this request only (MAA's policy testing).
    public var draftPolicyForAttestation: String?
    /// Echoed into the token as `nonce` (not a freshness check: use a challenge for that).
    public var nonce: String?

    /// The request field that carries the evidence on `route` (`SgxEnclave`, `OpenEnclave`, `TdxVm`, `SevSnpVm`,
    /// `SimulatedEnclave`): `report` for SEV-SNP and Open Enclave, `quote` otherwise. The one place that decides it.
    public static func evidenceField(route: String) -> String {
        let lowered = route.lowercased()
        return lowered == "sevsnpvm" || lowered == "openenclave" ? "report" : "quote"
    }

    /// A request posting `evidence` on `route`, in the field ``evidenceField(route:)`` names.
    public init(
        route: String,
        evidence: [UInt8],
        runtimeData: TypedData? = nil,
        initTimeData: TypedData? = nil,
        draftPolicyForAttestation: String? = nil,
        nonce: String? = nil
    ) {
        let encoded = Base64URL.encode(evidence)
        if Self.evidenceField(route: route) == "report" { report = encoded } else { quote = encoded }
        self.runtimeData = runtimeData
        self.initTimeData = initTimeData
        self.draftPolicyForAttestation = draftPolicyForAttestation
        self.nonce = nonce
    }

    /// The evidence as sent (base64url): `quote`, else `report`, else `evidence`.
    public var evidenceText: String? { quote ?? report ?? evidence }
}
