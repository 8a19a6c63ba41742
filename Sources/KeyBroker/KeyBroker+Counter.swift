internal import AttestationAPI
internal import CleanRoom
internal import Crypto
internal import EnclaveCore
public import Foundation
public import KeyBrokerInterface

extension KeyBroker {
    /// A clean room's rollback counter (`BrokerCounter`). `read` needs no token (the value and digest are not
    /// secret). For `increment` the token must verify as a release's does, be signed with a certificate also pinned in
    /// the keyring when it was made (``BrokerKeyring/authorityPins``), and its `x-ms-runtime` must name
    /// `request.contract` and, as `counterKey`, this broker's signing key (only a clean room that checks this broker's
    /// answers moves its counter), and its enclave must be the one the contract names, as the data owners' release
    /// policy requires: `request.contractDocument` (the contract's canonical bytes, at most 1 MiB, their SHA-256 the
    /// contract ID) names the signer, product and minimum security version, and the enclave must not be debuggable
    /// (so no other enclave that binds this broker's key can push the contract's counter ahead). The token's runtime
    /// data and evidence are public (the clean room publishes them, every receipt carries them), so anyone can have
    /// them attested: the increment must also carry `request.requestSignature`, the enclave's ES256 signature over
    /// `BrokerCounterRequest.incrementMessage(contract:expected:state:nonce:)` by the key the token's
    /// `x-ms-runtime.counterRequestKey` names, which only the enclave holds. It moves `expected` to `expected + 1`
    /// with the new state digest and is refused unless the counter is at `expected`. The answer is signed with the broker's
    /// signing key over the contract, the record and the caller's nonce, so the host that carries it can't forge or
    /// replay one.
    ///
    /// - Throws: ``KeyBrokerError``: `BadParameter`, the token's refusal (as for releases),
    ///   `AuthorityCertificateNotPinned`, `CounterNotAllowed`, `CounterConflict`.
    public func counter(_ request: BrokerCounterRequest, now: Date) throws(KeyBrokerError) -> BrokerCounterResponse {
        func hex64(_ text: String) -> Bool {
            text.utf8.count == 64 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
        }
        let nonceCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_".utf8)
        guard hex64(request.contract), (16...128).contains(request.nonce.utf8.count),
            request.nonce.utf8.allSatisfy(nonceCharacters.contains), ["read", "increment"].contains(request.operation)
        else { throw KeyBrokerError("BadParameter", "the counter request's contract, nonce or operation is malformed") }
        var record = request.current ?? BrokerCounterRecord(value: 0, state: "")
        guard record.value == 0 ? record.state.isEmpty : hex64(record.state) else {
            throw KeyBrokerError("BadParameter", "the stored counter record is malformed")
        }
        if request.operation == "increment" {
            try checkCounterToken(request, now: now)
            guard hex64(request.state) else {
                throw KeyBrokerError("BadParameter", "the state digest is not 64 lower-case hex characters")
            }
            guard record.value == request.expected, request.expected < UInt64.max else {
                throw KeyBrokerError(
                    "CounterConflict",
                    "the counter is at \(record.value), not \(request.expected)"
                )
            }
            record = BrokerCounterRecord(value: request.expected + 1, state: request.state)
        }
        let message = BrokerCounterRequest.message(
            contract: request.contract,
            value: record.value,
            state: record.state,
            nonce: request.nonce
        )
        guard let signature = try? keyring.signingKey.signature(for: message) else {
            throw KeyBrokerError("CounterNotAllowed", "the counter answer could not be signed")
        }
        return BrokerCounterResponse(
            record: record,
            nonce: request.nonce,
            signature: Array(signature.rawRepresentation)
        )
    }

    /// An increment's token: verified as a release's, its `x-ms-runtime` naming the contract and this broker's key, its
    /// enclave the one the contract document names, and the increment signed by its `counterRequestKey`.
    func checkCounterToken(_ request: BrokerCounterRequest, now: Date) throws(KeyBrokerError) {
        let verified = try verifier.verify(request.token, now: now)
        // Trusted now is what the host chose at open; the keyring's pins were sealed when it was made.
        guard keyring.authorityPins.covers(url: verified.normalizedIssuer, thumbprint: verified.keyID) else {
            throw KeyBrokerError(
                BrokerRefusal.Code.authorityCertificateNotPinned,
                "the token is signed by a certificate the keyring was not made trusting"
            )
        }
        guard case .object(let runtime)? = verified.claims["x-ms-runtime"],
            case .string(let contract)? = runtime["contract"], contract == request.contract
        else {
            throw KeyBrokerError("CounterNotAllowed", "the token's x-ms-runtime.contract is not this contract")
        }
        let raw = Array(keyring.signingKey.publicKey.rawRepresentation)
        guard case .object(let key)? = runtime["counterKey"], case .string(let x)? = key["x"],
            case .string(let y)? = key["y"], Base64URL.decode(x) == Array(raw.prefix(32)),
            Base64URL.decode(y) == Array(raw.suffix(32))
        else {
            throw KeyBrokerError("CounterNotAllowed", "the token's x-ms-runtime.counterKey is not this broker's key")
        }
        let requirement = try Self.counterEnclave(request)
        try Self.checkCounterEnclave(verified.claims, requirement)
        try Self.checkRequestSignature(request, runtime: runtime)
    }

    /// The increment's signature (`request.requestSignature`) by the key the token's `x-ms-runtime.counterRequestKey`
    /// binds (a JWK: P-256 `x`, `y`), over `BrokerCounterRequest.incrementMessage`: what the enclave asked for, not
    /// what someone holding its public evidence would like.
    static func checkRequestSignature(
        _ request: BrokerCounterRequest,
        runtime: [String: TokenValue]
    ) throws(KeyBrokerError) {
        guard let signature = request.requestSignature else {
            throw KeyBrokerError(
                "CounterNotAllowed",
                "the increment carries no signature of the clean room enclave (a host or clean room enclave older "
                    + "than signed increments): anyone can have the enclave's public evidence attested"
            )
        }
        guard case .object(let jwk)? = runtime["counterRequestKey"], case .string(let x)? = jwk["x"],
            case .string(let y)? = jwk["y"], let xBytes = Base64URL.decode(x), let yBytes = Base64URL.decode(y),
            xBytes.count == 32, yBytes.count == 32,
            let key = try? P256.Signing.PublicKey(rawRepresentation: xBytes + yBytes)
        else {
            throw KeyBrokerError(
                "CounterNotAllowed",
                "the token's x-ms-runtime binds no P-256 counterRequestKey (a clean room enclave older than signed "
                    + "increments)"
            )
        }
        let message = BrokerCounterRequest.incrementMessage(
            contract: request.contract,
            expected: request.expected,
            state: request.state,
            nonce: request.nonce
        )
        guard signature.count == 64, let parsed = try? P256.Signing.ECDSASignature(rawRepresentation: signature),
            key.isValidSignature(parsed, for: message)
        else {
            throw KeyBrokerError(
                "CounterNotAllowed",
                "the increment's signature does not verify with the token's x-ms-runtime.counterRequestKey (not the "
                    + "clean room enclave's request)"
            )
        }
    }

    /// The enclave the increment's contract document names: the document is at most `CanonicalJSON.maxBytes`, its
    /// SHA-256 is `request.contract`, and it reads as a canonical contract.
    static func counterEnclave(_ request: BrokerCounterRequest) throws(KeyBrokerError) -> Contract.EnclaveRequirement {
        guard let document = request.contractDocument else {
            throw KeyBrokerError("CounterNotAllowed", "the increment carries no contract document")
        }
        guard document.count <= CanonicalJSON.maxBytes else {
            throw KeyBrokerError(
                "CounterNotAllowed",
                "the increment's contract document is larger than \(CanonicalJSON.maxBytes) bytes"
            )
        }
        guard Hex.encode(Array(SHA256.hash(data: document))) == request.contract else {
            throw KeyBrokerError(
                "CounterNotAllowed",
                "the increment's contract document is not contract \(request.contract)"
            )
        }
        do {
            return try Contract(canonicalBytes: document).enclave
        } catch {
            throw KeyBrokerError("CounterNotAllowed", "the increment's contract document does not read: \(error)")
        }
    }

    /// The token's SGX claims against the contract's enclave, compared as the data owners' release policy compares
    /// them (`CleanRoomKeyRelease.releasePolicy`): signer and product equal, security version at least the minimum,
    /// not debuggable, and the build (`x-ms-sgx-mrenclave`) when the contract pins one. A missing claim fails its
    /// check.
    static func checkCounterEnclave(
        _ claims: [String: TokenValue],
        _ requirement: Contract.EnclaveRequirement
    ) throws(KeyBrokerError) {
        var checks: [(claim: String, expected: TokenValue, atLeast: Bool)] = [
            ("x-ms-sgx-mrsigner", .string(requirement.signerID.hex), false),
            ("x-ms-sgx-product-id", .integer(Int(requirement.productID)), false),
            ("x-ms-sgx-svn", .integer(Int(requirement.minSecurityVersion)), true),
            ("x-ms-sgx-is-debuggable", .bool(false), false),
        ]
        if let pinned = requirement.uniqueID { checks.append(("x-ms-sgx-mrenclave", .string(pinned.hex), false)) }
        for check in checks {
            let order = claims[check.claim].flatMap { ReleasePolicy.compare($0, check.expected) }
            let holds =
                check.atLeast
                ? (order == .orderedSame || order == .orderedDescending)
                    && claims[check.claim].map(ReleasePolicy.isNumber) == true
                : order == .orderedSame
            guard holds else {
                throw KeyBrokerError(
                    "CounterNotAllowed",
                    "the token's \(check.claim) is not the contract's enclave (\(check.atLeast ? "at least " : "")"
                        + "\(check.expected))"
                )
            }
        }
    }
}
