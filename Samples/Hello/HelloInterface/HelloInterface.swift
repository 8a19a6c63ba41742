public import EnclaveCore

/// ECALL: greet someone. The enclave logs through ``Log`` and answers with a greeting that names its uniqueID.
public enum Greet: EnclaveCall {
    public typealias Input = String
    public typealias Output = String
    public static var name: String { "hello.greet" }
}

/// OCALL: the enclave asks the host to log a line.
public enum Log: EnclaveCall {
    public typealias Input = String
    public typealias Output = Empty
    public static var name: String { "hello.log" }
}

/// ECALL: remote evidence whose report data starts with SHA-256 of the given nonce.
public enum Attest: EnclaveCall {
    public typealias Input = [UInt8]
    public typealias Output = AttestationEvidence
    public static var name: String { "hello.attest" }
}

/// ECALL: make an ephemeral P-256 key inside the enclave and return runtime data — JSON naming the service's
/// challenge and the key's public half as a JWK — with evidence whose report data starts with its SHA-256. The
/// private key never leaves the enclave.
public enum AttestKey: EnclaveCall {
    public typealias Input = String
    public typealias Output = KeyAttestation
    public static var name: String { "hello.attestKey" }
}

/// The runtime data and the evidence that binds it.
public struct KeyAttestation: Codable, Sendable {
    public var runtimeData: [UInt8]
    public var evidence: AttestationEvidence

    public init(runtimeData: [UInt8], evidence: AttestationEvidence) {
        self.runtimeData = runtimeData
        self.evidence = evidence
    }
}
