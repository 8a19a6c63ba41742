import AttestationAPI
import Crypto
import EnclaveRuntime
import Foundation
import KeyBroker
import KeyBrokerInterface
import KeyReleaseFormats
import Synchronization

/// The key broker enclave: every key operation of the broker runs here. Its keyring (master key, import key,
/// signing key) is sealed under the signer policy at the security version of the enclave that made or joined it: an
/// upgrade (same signer and product, a higher security version) opens it, a lower version can't. Opening never
/// reseals it and its keys never change, so the build that sealed it still opens it after an upgrade (a flawed build
/// is shut out only by a new keyring: docs/threat-model.md). The host stores only sealed and wrapped blobs.
@main
struct KeyBrokerEnclave: EnclaveApplication {
    let context: EnclaveContext
    let state = BrokerState()

    /// The additional data of the sealed keyring (format 2, `BrokerKeyring.sealedRecord`: the keyring and the
    /// certificate it was joined under), so that no other sealed blob of the same signer passes for it.
    static let keyringLabel = Array("enclavekit.keybroker.keyring.v2".utf8)
    /// Format 1 (the keyring alone): refused, as it does not record the certificate a joined keyring was accepted
    /// under (an older enclave of the same signer could have sealed a keyring its host made).
    static let outdatedKeyringLabel = Array("enclavekit.keybroker.keyring.v1".utf8)

    init(context: EnclaveContext) {
        self.context = context
    }

    func register(_ calls: inout ECallTable) {
        let context = self.context
        let state = self.state
        calls.register(BrokerOpen.self) { request in
            try await Self.open(request, context: context, state: state)
        }
        calls.register(BrokerCreateKey.self) { request in try Self.mapped { try state.broker().createKey(request) } }
        calls.register(BrokerImportKey.self) { request in try Self.mapped { try state.broker().importKey(request) } }
        calls.register(BrokerUpdatePolicy.self) { request in
            try Self.mapped { try state.broker().updatePolicy(request) }
        }
        calls.register(BrokerRelease.self) { request in try state.broker().release(request, now: Date()) }
        calls.register(BrokerUnwrap.self) { request in try Self.mapped { try state.broker().unwrap(request) } }
        calls.register(BrokerWrap.self) { request in try Self.mapped { try state.broker().wrap(request) } }
        // A clean room's rollback counter (KeyBroker+Counter.swift).
        calls.register(BrokerCounter.self) { request in
            try Self.mapped { try state.broker().counter(request, now: Date()) }
        }
        calls.register(BrokerJoinRequest.self) { _ in
            let key = P256.KeyAgreement.PrivateKey()
            state.setJoinKey(key)
            let jwk = Self.json(WrapJWK(p256: key.publicKey, kid: "join"))
            let runtimeData = Array(TokenValue.object(["keys": .array([try Self.value(jwk)])]).jsonText.utf8)
            let evidence = try await context.evidence(reportData: EnclaveContext.reportData(hashing: runtimeData))
            return BrokerJoinOffer(key: jwk, runtimeData: runtimeData, evidence: evidence)
        }
        calls.register(BrokerJoinGrant.self) { request in
            let identity = context.identity
            var answer = try Self.mapped {
                try state.broker().grantJoin(
                    request,
                    granter: KeyBroker.ReplicaIdentity(
                        signerID: identity.signerID.hex,
                        productID: Int(identity.productID),
                        securityVersion: Int(identity.securityVersion),
                        debug: identity.isDebug
                    ),
                    now: Date()
                )
            }
            // The newcomer's enclave authenticates the granter by this evidence (its key and the keyring bound).
            answer.evidence = try await context.evidence(
                reportData: EnclaveContext.reportData(hashing: answer.runtimeData)
            )
            return answer
        }
        calls.register(BrokerJoinComplete.self) { request in
            guard let key = state.takeJoinKey() else {
                throw EnclaveError.malformedInput("no join request is pending in this enclave")
            }
            guard request.grant.utf8.count <= 64 * 1024, request.authorities.count <= 64 else {
                throw EnclaveError.malformedInput("the grant or the authority list is too long")
            }
            let identity = context.identity
            let keyring = try Self.mapped {
                try KeyBroker.completeJoin(
                    grant: request.grant,
                    granterToken: request.granterToken,
                    with: key,
                    authorities: request.authorities,
                    newcomer: KeyBroker.ReplicaIdentity(
                        signerID: identity.signerID.hex,
                        productID: Int(identity.productID),
                        securityVersion: Int(identity.securityVersion),
                        debug: identity.isDebug
                    ),
                    now: Date()
                )
            }
            return try await context.seal(keyring.sealedRecord, policy: .signerID, additionalData: Self.keyringLabel)
        }
    }

    static func open(
        _ request: BrokerOpenRequest,
        context: EnclaveContext,
        state: BrokerState
    ) async throws
        -> BrokerOpenResponse
    {
        guard request.brokerName.utf8.count <= 1024, request.authorities.count <= 64 else {
            throw EnclaveError.malformedInput("the broker name or the authority list is too long")
        }
        let keyring: BrokerKeyring
        var newBlob: [UInt8]?
        if let sealed = request.sealedKeyring {
            let opened = try await context.unseal(sealed)
            guard opened.additionalData != outdatedKeyringLabel else {
                throw EnclaveError.invalidSignature(
                    "\(KeyBrokerError.keyringOutdated): the sealed keyring is of format 1, which does not record the "
                        + "certificate a joined keyring was accepted under; make a new keyring or join again"
                )
            }
            guard opened.policy == .signerID, opened.additionalData == keyringLabel else {
                throw EnclaveError.invalidSignature("the sealed blob is not a broker keyring")
            }
            keyring = try Self.mapped { try BrokerKeyring(sealedRecord: opened.plaintext) }
        } else {
            keyring = try Self.mapped {
                try BrokerKeyring.generate(
                    name: request.brokerName,
                    authorities: try KeyBroker.pins(of: request.authorities)
                )
            }
            newBlob = try await context.seal(keyring.sealedRecord, policy: .signerID, additionalData: keyringLabel)
        }
        let broker = try Self.mapped {
            try KeyBroker(keyring: keyring, authorities: request.authorities, name: request.brokerName)
        }
        state.setBroker(broker)
        // The authorities and signing certificates the host had this enclave trust are part of what the evidence
        // proves: a client refuses a broker that trusts other ones than it expects.
        let runtime: TokenValue = .object([
            "broker": .string(request.brokerName),
            "keys": .array([try value(broker.importKeyJWK), try value(broker.signingKeyJWK)]),
            "authorities": broker.pinnedAuthorities.runtimeValue,
        ])
        let runtimeData = Array(runtime.jsonText.utf8)
        let evidence = try await context.evidence(reportData: EnclaveContext.reportData(hashing: runtimeData))
        return BrokerOpenResponse(
            newSealedKeyring: newBlob,
            signingCertificate: keyring.signingCertificate,
            importKey: broker.importKeyJWK,
            runtimeData: runtimeData,
            evidence: evidence
        )
    }

    /// Runs `body`, turning a ``KeyBrokerError`` into an `EnclaveError` that crosses the boundary with its code
    /// kept: `invalidSignature` for blobs that don't open (tampered, another broker's), `malformedInput` for
    /// everything else; the message is `"<KeyBrokerError code>: <reason>"` so the host can tell the broker's codes.
    static func mapped<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as KeyBrokerError {
            let message = "\(error.code): \(error.reason)"
            switch error.code {
            case BrokerRefusal.Code.keyBlobInvalid, BrokerRefusal.Code.keyBlobOutdated, KeyBrokerError.keyringInvalid,
                KeyBrokerError.importRefused, KeyBrokerError.importIntentMissing, KeyBrokerError.importIntentMismatch,
                KeyBrokerError.keyringAuthorityNotTrusted, KeyBrokerError.keyringOutdated,
                BrokerRefusal.Code.joinRefused:
                throw EnclaveError.invalidSignature(message)
            default:
                throw EnclaveError.malformedInput(message)
            }
        }
    }

    static func value(_ json: String) throws -> TokenValue {
        try JSONDecoder().decode(TokenValue.self, from: Data(json.utf8))
    }

    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self)
    }
}

/// The broker once opened, and a newcomer's pending join key.
final class BrokerState: Sendable {
    private let opened = Mutex<KeyBroker?>(nil)
    private let joinKey = Mutex<P256.KeyAgreement.PrivateKey?>(nil)

    func setBroker(_ broker: KeyBroker) { opened.withLock { $0 = broker } }

    func broker() throws -> KeyBroker {
        guard let broker = opened.withLock({ $0 }) else {
            throw EnclaveError.malformedInput("the broker is not open: call keybroker.open first")
        }
        return broker
    }

    func setJoinKey(_ key: P256.KeyAgreement.PrivateKey) { joinKey.withLock { $0 = key } }

    func takeJoinKey() -> P256.KeyAgreement.PrivateKey? {
        joinKey.withLock { key in
            defer { key = nil }
            return key
        }
    }
}
