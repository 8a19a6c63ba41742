import Attestation
import AttestationAPI
import AttestationClient
import AttestationService
import CleanRoom
import Crypto
import EnclaveCore
import Foundation
import KeyBrokerInterface
import TestSupport
import Testing

/// `enclave serve keybroker` serves clean rooms' rollback counters (`DATA-DIR/counters.sqlite`): reads signed by the
/// broker enclave's release signing key over the caller's nonce, increments only with a token naming the contract
/// and that key as `counterKey`, compare-and-swap, through ``KeyBrokerClient``'s counter calls.
@Suite("Key broker counters served by enclave serve keybroker", .serialized)
struct CounterServeTests {
    /// A contract naming the enclave of ``token(_:contract:counterKey:signer:)``'s tokens (signer 0x22…, product 3,
    /// SVN at least 2); its canonical bytes go with each increment.
    static let document = Contract(
        name: "served counters",
        parties: [.init(name: "owner", roles: [.dataOwner], signingKey: P256.Signing.PrivateKey().publicKey)],
        dataSets: [],
        queries: [],
        outputRules: [],
        recipients: [],
        enclave: .init(
            signerID: try! Digest32(bytes: [UInt8](repeating: 0x22, count: 32)),
            productID: 3,
            minSecurityVersion: 2
        )
    ).canonicalBytes
    static let contract = Hex.encode(Array(SHA256.hash(data: document)))

    /// The clean room enclave's counter request key: bound in the tokens' runtime data, signs each increment.
    static let requestKey = P256.Signing.PrivateKey()

    /// The enclave's signature over an increment (as `signature` in its body).
    static func sign(expected: UInt64, state: String, nonce: String, contract: String = contract) -> [UInt8]? {
        let message = BrokerCounterRequest.incrementMessage(
            contract: contract,
            expected: expected,
            state: state,
            nonce: nonce
        )
        return (try? requestKey.signature(for: message)).map { Array($0.rawRepresentation) }
    }

    /// A token of the harness's attestation service for an enclave whose runtime data names `contract`,
    /// `counterKey` (raw P-256 x‖y) and ``requestKey`` as `counterRequestKey`.
    static func token(
        _ harness: KeyImportClientTests.Harness,
        contract: String,
        counterKey: [UInt8],
        signer: UInt8 = 0x22
    ) async throws
        -> String
    {
        let identity = EnclaveIdentity(
            uniqueID: try Digest32(bytes: [UInt8](repeating: 0x11, count: 32)),
            signerID: try Digest32(bytes: [UInt8](repeating: signer, count: 32)),
            productID: 3,
            securityVersion: 2,
            attributes: []
        )
        let request = Array(requestKey.publicKey.rawRepresentation)
        let runtime = Array(
            (#"{"contract":""# + contract + #"","counterKey":{"crv":"P-256","kid":"counter","kty":"EC","x":""#
                + Base64URL.encode(counterKey.prefix(32)) + #"","y":""# + Base64URL.encode(counterKey.suffix(32))
                + #""},"counterRequestKey":{"crv":"P-256","kid":"counter-request","kty":"EC","x":""#
                + Base64URL.encode(request.prefix(32)) + #"","y":""# + Base64URL.encode(request.suffix(32))
                + #""}}"#).utf8
        )
        let evidence = try harness.platform.quote(
            for: identity,
            reportData: Array(SHA256.hash(data: runtime)) + [UInt8](repeating: 0, count: 32)
        )
        return try await harness.core.attest(
            type: .simulatedEnclave,
            request: AttestationServiceCore.AttestRequest(evidence: evidence, runtimeData: (runtime, true))
        )
    }

    static func nonce() -> String { (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined() }

    /// The answer's signature verifies with `key` over the contract, value, state and `nonce`.
    static func verifies(_ answer: RollbackCounterAnswer, key: P256.Signing.PublicKey, nonce: String) -> Bool {
        guard answer.nonce == nonce, let raw = Base64URL.decode(answer.signature),
            let signature = try? P256.Signing.ECDSASignature(rawRepresentation: raw)
        else { return false }
        let message = BrokerCounterRequest.message(
            contract: answer.contract,
            value: answer.value,
            state: answer.state,
            nonce: nonce
        )
        return key.isValidSignature(signature, for: message)
    }

    @Test("serve keybroker answers signed counters, moves them only for its own counterKey, keeps them in DATA-DIR")
    func servedCounters() async throws {
        let harness = try await KeyImportClientTests.Harness()
        do {
            try await check(harness)
        } catch {
            try? await harness.stop()
            throw error
        }
        try await harness.stop()
    }

    func check(_ harness: KeyImportClientTests.Harness) async throws {
        let client = harness.client
        let verified = try await client.verifiedBroker(attestation: harness.attestation, expecting: harness.expectation)
        let key = try P256.Signing.PublicKey(rawRepresentation: verified.signingKey)

        // A read: value 0, signed over this nonce by the key the broker's evidence binds.
        let first = Self.nonce()
        let zero = try await client.counter(contract: Self.contract, nonce: first)
        #expect(zero.value == 0 && zero.state.isEmpty)
        #expect(Self.verifies(zero, key: key, nonce: first))

        // An increment whose token names another counter key (a host's own) is refused by name.
        let state = String(repeating: "cd", count: 32)
        let other = Array(P256.Signing.PrivateKey().publicKey.rawRepresentation)
        let wrongToken = try await Self.token(harness, contract: Self.contract, counterKey: other)
        let refused = await #expect(throws: AttestationClient.Failure.self) {
            _ = try await client.incrementCounter(
                contract: Self.contract,
                nonce: Self.nonce(),
                expected: 0,
                state: state,
                token: wrongToken,
                document: Self.document
            )
        }
        #expect(refused?.code == "CounterNotAllowed", "\(String(describing: refused))")
        #expect(refused?.status == 403)
        #expect(refused?.message.contains("counterKey") == true, "\(String(describing: refused))")

        // Another signer's enclave naming the contract and the broker's key (attack review F7): refused by the claim
        // that fails; and the genuine enclave's increment without the contract document: refused by name.
        let token = try await Self.token(harness, contract: Self.contract, counterKey: verified.signingKey)
        let attacker = try await Self.token(
            harness,
            contract: Self.contract,
            counterKey: verified.signingKey,
            signer: 0x33
        )
        for (credential, document, named) in [
            (attacker, Self.document, "x-ms-sgx-mrsigner"), (token, nil, "no contract document"),
        ] {
            let notAllowed = await #expect(throws: AttestationClient.Failure.self) {
                _ = try await client.incrementCounter(
                    contract: Self.contract,
                    nonce: Self.nonce(),
                    expected: 0,
                    state: state,
                    token: credential,
                    document: document
                )
            }
            #expect(notAllowed?.code == "CounterNotAllowed", "\(String(describing: notAllowed))")
            #expect(notAllowed?.status == 403)
            #expect(notAllowed?.message.contains(named) == true, "\(String(describing: notAllowed))")
        }
        #expect(try await client.counter(contract: Self.contract, nonce: Self.nonce()).value == 0)
        // A contract document larger than other requests' 256 KiB body limit reaches the broker enclave (contracts
        // may be 1 MiB): here it is not the contract, and is refused as such; a body over 2 MiB is refused unread.
        let large = Array(Self.document) + [UInt8](repeating: 0x20, count: 400 << 10)
        let notThis = await #expect(throws: AttestationClient.Failure.self) {
            _ = try await client.incrementCounter(
                contract: Self.contract,
                nonce: Self.nonce(),
                expected: 0,
                state: state,
                token: token,
                document: large
            )
        }
        #expect(notThis?.code == "CounterNotAllowed", "\(String(describing: notThis))")
        #expect(notThis?.message.contains("is not contract") == true, "\(String(describing: notThis))")
        let huge = await #expect(throws: AttestationClient.Failure.self) {
            _ = try await client.incrementCounter(
                contract: Self.contract,
                nonce: Self.nonce(),
                expected: 0,
                state: state,
                token: token,
                document: [UInt8](repeating: 0x20, count: 2 << 20)
            )
        }
        #expect(huge?.status == 413, "\(String(describing: huge))")

        // The genuine enclave's token and the contract without the enclave's signature over the increment (anyone can
        // have the published evidence attested), or with a signature over another state: refused by name.
        let unsignedNonce = Self.nonce()
        for (signature, named) in [
            (nil, "no signature"),
            (
                Self.sign(expected: 0, state: String(repeating: "ab", count: 32), nonce: unsignedNonce),
                "does not verify"
            ),
        ] {
            let unsigned = await #expect(throws: AttestationClient.Failure.self) {
                _ = try await client.incrementCounter(
                    contract: Self.contract,
                    nonce: unsignedNonce,
                    expected: 0,
                    state: state,
                    token: token,
                    document: Self.document,
                    signature: signature
                )
            }
            #expect(unsigned?.code == "CounterNotAllowed", "\(String(describing: unsigned))")
            #expect(unsigned?.message.contains(named) == true, "\(String(describing: unsigned))")
        }
        #expect(try await client.counter(contract: Self.contract, nonce: Self.nonce()).value == 0)

        // With the broker's key it moves 0 → 1, recording the state; a second writer from 0 loses.
        let second = Self.nonce()
        let one = try await client.incrementCounter(
            contract: Self.contract,
            nonce: second,
            expected: 0,
            state: state,
            token: token,
            document: Self.document,
            signature: Self.sign(expected: 0, state: state, nonce: second)
        )
        #expect(one.value == 1 && one.state == state)
        #expect(Self.verifies(one, key: key, nonce: second))
        let conflict = await #expect(throws: AttestationClient.Failure.self) {
            let nonce = Self.nonce()
            _ = try await client.incrementCounter(
                contract: Self.contract,
                nonce: nonce,
                expected: 0,
                state: state,
                token: token,
                document: Self.document,
                signature: Self.sign(expected: 0, state: state, nonce: nonce)
            )
        }
        #expect(conflict?.code == "CounterConflict", "\(String(describing: conflict))")
        // Another contract with this token: refused.
        let elsewhere = await #expect(throws: AttestationClient.Failure.self) {
            _ = try await client.incrementCounter(
                contract: String(repeating: "ef", count: 32),
                nonce: Self.nonce(),
                expected: 0,
                state: state,
                token: token,
                document: Self.document
            )
        }
        #expect(elsewhere?.code == "CounterNotAllowed", "\(String(describing: elsewhere))")
        let third = Self.nonce()
        let read = try await client.counter(contract: Self.contract, nonce: third)
        #expect(read.value == 1 && read.state == state && Self.verifies(read, key: key, nonce: third))

        // Kept in the data directory, readable by the broker's user only.
        let path = harness.directory + "/broker/counters.sqlite"
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
    }
}
