public import EnclaveCore

// The broker enclave's ECALLs (host → broker enclave) and the OCALLs an ordinary enclave's `releaseKey` makes
// (enclave → host). Names are stable wire identifiers: keep them unchanged across versions.

/// ECALL: open the broker — unseal its keyring (or make a new one when the host has none), pin the trusted
/// authorities, and answer the broker's public identity with evidence over it.
public enum BrokerOpen: EnclaveCall {
    public typealias Input = BrokerOpenRequest
    public typealias Output = BrokerOpenResponse
    public static var name: String { "keybroker.open" }
}

/// ECALL: create a key inside the broker; answers it wrapped under the master key, for the host to store.
public enum BrokerCreateKey: EnclaveCall {
    public typealias Input = BrokerCreateKeyRequest
    public typealias Output = StoredKey
    public static var name: String { "keybroker.createKey" }
}

/// ECALL: import a key wrapped to the broker's import key (bring your own key); answers it wrapped under the
/// master key. A key imported under a release policy (the owner's) is stored immutable, whatever the request says.
public enum BrokerImportKey: EnclaveCall {
    public typealias Input = BrokerImportKeyRequest
    public typealias Output = StoredKey
    public static var name: String { "keybroker.importKey" }
}

/// ECALL: the release decision: verify the target token, evaluate the key's policy and wrap the key to the token's
/// key. Answers the release JWS or a refusal (a refusal is an answer, not a thrown error).
public enum BrokerRelease: EnclaveCall {
    public typealias Input = BrokerReleaseRequest
    public typealias Output = BrokerReleaseResponse
    public static var name: String { "keybroker.release" }
}

/// ECALL: change a key's attributes (release policy, exportable, immutable); answers the key re-wrapped under the
/// new policy digest. Refused for a key whose policy is immutable (every key imported under a release policy).
public enum BrokerUpdatePolicy: EnclaveCall {
    public typealias Input = BrokerUpdatePolicyRequest
    public typealias Output = StoredKey
    public static var name: String { "keybroker.updatePolicy" }
}

/// ECALL (administrator): unwrap a data key with a stored key's secret part (Key Vault's `unwrapkey`).
public enum BrokerUnwrap: EnclaveCall {
    public typealias Input = BrokerUnwrapRequest
    public typealias Output = [UInt8]
    public static var name: String { "keybroker.unwrap" }
}

/// ECALL (administrator): wrap a data key with a stored key (Key Vault's `wrapkey`), for keys whose public part
/// can't do it outside (AES).
public enum BrokerWrap: EnclaveCall {
    public typealias Input = BrokerWrapRequest
    public typealias Output = [UInt8]
    public static var name: String { "keybroker.wrap" }
}

/// ECALL, on a newcomer replica: make an ephemeral key and answer evidence binding it, for the host to take to a
/// trusted attestation authority.
public enum BrokerJoinRequest: EnclaveCall {
    public typealias Input = Empty
    public typealias Output = BrokerJoinOffer
    public static var name: String { "keybroker.joinRequest" }
}

/// ECALL, on a running replica: check a newcomer's token (same signer and product, security version at least
/// this one's, not debug unless this one is, evidence binding the offered key) and wrap the keyring to the offered
/// key; answers it with this enclave's evidence binding the offered key and the keyring's public identity.
public enum BrokerJoinGrant: EnclaveCall {
    public typealias Input = BrokerJoinGrantRequest
    public typealias Output = BrokerJoinGrantResponse
    public static var name: String { "keybroker.joinGrant" }
}

/// ECALL, on the newcomer: authenticate the granter by the token of its evidence (a pinned authority, this enclave's
/// signer and product, not debug, binding this enclave's ephemeral key and the keyring it grants), unwrap the grant
/// with the ephemeral key of ``BrokerJoinRequest`` and seal the keyring under the signer policy, with the authority
/// certificate that signed the granter's token; answers the sealed blob (then ``BrokerOpen`` it, trusting that
/// certificate: the keyring opens only while it is trusted, so the evidence shows it). Any refusal spends the
/// ephemeral key.
public enum BrokerJoinComplete: EnclaveCall {
    public typealias Input = BrokerJoinCompleteRequest
    public typealias Output = [UInt8]
    public static var name: String { "keybroker.joinComplete" }
}

/// OCALL made by `releaseKey` in an ordinary enclave: carry this evidence (and runtime data) to the attestation
/// authority and answer its token. The host only carries opaque bytes.
public enum KeyReleaseAttest: EnclaveCall {
    public typealias Input = KeyReleaseAttestRequest
    public typealias Output = String
    public static var name: String { "keyrelease.attest" }
}

/// OCALL made by `releaseKey` in an ordinary enclave: carry this token to the key broker's release endpoint for
/// the named key and answer the broker's release JWS (the `value` of Key Vault's answer).
public enum KeyReleaseFetch: EnclaveCall {
    public typealias Input = KeyReleaseFetchRequest
    public typealias Output = String
    public static var name: String { "keyrelease.fetch" }
}
