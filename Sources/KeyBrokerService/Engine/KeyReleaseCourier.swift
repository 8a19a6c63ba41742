internal import Attestation
internal import AttestationAPI
public import AttestationClient
internal import EnclaveCore
public import EnclaveHost
internal import KeyBrokerInterface

/// The host's side of an ordinary enclave's `releaseKey`: the two OCALLs that carry opaque bytes — the enclave's
/// evidence to the attestation service (`KeyReleaseAttest`, answering its token) and the token to the key broker
/// (`KeyReleaseFetch`, answering the broker's release JWS). The host learns nothing it could use: the evidence and
/// token bind a key only the enclave holds, and the answer is wrapped to that key and signed by the broker enclave.
public struct KeyReleaseCourier: Sendable {
    /// The attestation service the evidence goes to.
    public let attestation: AttestationClient
    /// The key broker the token goes to.
    public let broker: KeyBrokerClient

    /// A courier between `attestation` and `broker`.
    public init(attestation: AttestationClient, broker: KeyBrokerClient) {
        self.attestation = attestation
        self.broker = broker
    }

    /// Serve `KeyReleaseAttest` and `KeyReleaseFetch` in `table` (register before loading the enclave).
    public func register(in table: inout OCallTable) {
        let attestation = self.attestation
        let broker = self.broker
        table.register(KeyReleaseAttest.self) { request in
            guard request.runtimeData.count <= 64 << 10 else {
                throw EnclaveError.limitExceeded("runtime data over 64 KiB")
            }
            let evidence = try Evidence(request.evidence)
            return try await attestation.attest(
                evidence,
                runtimeData: .init(data: request.runtimeData, dataType: .json)
            )
        }
        table.register(KeyReleaseFetch.self) { request in
            guard request.token.utf8.count <= 64 << 10, (request.nonce?.utf8.count ?? 0) <= 1024 else {
                throw EnclaveError.limitExceeded("the token or nonce is too large")
            }
            return try await broker.release(
                name: request.name,
                version: request.version,
                KeyReleaseParameters(target: request.token, nonce: request.nonce)
            )
        }
    }
}
