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
