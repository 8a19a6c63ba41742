import Attestation
import CleanRoom
import CleanRoomInterface
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import Testing

/// The clean room enclave's ECALLs: it opens only under a fully signed, unhalted contract that names it, binds the
/// contract ID and its key into its evidence, and stays halted once halted.
@Suite("Clean room enclave", .serialized)
struct CleanRoomEnclaveTests {
    let parties = Parties()

    /// What a refused call must look like: the boundary's code, and the clean room check leading the reason.
    func expectRefused(
        _ code: EnclaveError.Code,
        _ check: String,
        sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () async throws -> Void
    ) async {
        do {
            try await body()
            Issue.record("expected \(code) / \(check), but the call succeeded", sourceLocation: sourceLocation)
        } catch let error as EnclaveError {
            #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
            #expect(error.reason.hasPrefix(check + ":"), "\(error.reason)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func opensUnderAFullySignedContractAndBindsItsIDAndKey() async throws {
        let fixture = try await CleanRoomEnclaveFixture.load()
        defer { Task { await fixture.enclave.terminate() } }
        let contract = parties.contract(enclave: fixture.requirement)
        let opened = try await fixture.enclave.call(
            CleanRoomOpen.self,
            .init(contract: contract.canonicalBytes, signatures: try parties.signatures(contract), challenge: "abc123")
        )
        #expect(opened.contractID == contract.id.hex)
        // The runtime data is what the attestation service binds: its SHA-256 leads the report data.
        let quote = try DCAPQuote(bytes: opened.evidence.bytes)
        #expect(Array(quote.reportData.prefix(32)) == Array(SHA256.hash(data: opened.runtimeData)))
        let runtime = try #require(
            try JSONSerialization.jsonObject(with: Data(opened.runtimeData)) as? [String: Any]
        )
        #expect(runtime["contract"] as? String == contract.id.hex)
        #expect(runtime["challenge"] as? String == "abc123")
        let keys = try #require(runtime["keys"] as? [[String: Any]])
        #expect(keys.count == 1)
        #expect(keys.first?["kty"] as? String == "EC")
        #expect(keys.first?["crv"] as? String == "P-256")
        #expect(keys.first?["d"] == nil)  // never the private part
        // Opening again under the same contract re-attests the same key.
        let again = try await fixture.enclave.call(
            CleanRoomOpen.self,
            .init(contract: contract.canonicalBytes, signatures: try parties.signatures(contract))
        )
        let again2 = try #require(try JSONSerialization.jsonObject(with: Data(again.runtimeData)) as? [String: Any])
        #expect((again2["keys"] as? [[String: Any]])?.first?["x"] as? String == keys.first?["x"] as? String)
        let status = try await fixture.enclave.call(CleanRoomStatus.self, Empty())
        #expect(status.phase == .open)
        #expect(status.signedBy == ["analyst", "bank-a", "bank-b"])
    }

    @Test func refusesAnIncompletelySignedContract() async throws {
        let fixture = try await CleanRoomEnclaveFixture.load()
        defer { Task { await fixture.enclave.terminate() } }
        let contract = parties.contract(enclave: fixture.requirement)
        await expectRefused(.callFailed, "notActive") {
            _ = try await fixture.enclave.call(
                CleanRoomOpen.self,
                .init(contract: contract.canonicalBytes, signatures: try parties.signatures(contract, by: ["bank-a"]))
            )
        }
        #expect(try await fixture.enclave.call(CleanRoomStatus.self, Empty()).phase == .closed)
    }

    @Test func refusesAHaltedContract() async throws {
        let fixture = try await CleanRoomEnclaveFixture.load()
        defer { Task { await fixture.enclave.terminate() } }
        let contract = parties.contract(enclave: fixture.requirement)
        await expectRefused(.callFailed, "halted") {
            _ = try await fixture.enclave.call(
                CleanRoomOpen.self,
                .init(
                    contract: contract.canonicalBytes,
                    signatures: try parties.signatures(contract),
                    halts: [try parties.halt(contract, by: "bank-b")]
                )
            )
        }
    }

    @Test func refusesASignatureByANonPartyOrAForgedOne() async throws {
        let fixture = try await CleanRoomEnclaveFixture.load()
        defer { Task { await fixture.enclave.terminate() } }
        let contract = parties.contract(enclave: fixture.requirement)
        var signatures = try parties.signatures(contract)
        // bank-b's signature made with a stranger's key.
        let forged = try ContractSignature(
            contractID: contract.id,
            party: "bank-b",
            signature: Array(
                P256.Signing.PrivateKey().signature(for: ContractSignature.message(contractID: contract.id))
                    .rawRepresentation
            )
        )
        signatures[2] = forged.canonicalBytes
        await expectRefused(.invalidSignature, "badSignature") {
            _ = try await fixture.enclave.call(
                CleanRoomOpen.self,
                .init(contract: contract.canonicalBytes, signatures: signatures)
            )
        }
        // A signature naming someone who is not a party.
        let stranger = ContractSignature(contractID: contract.id, party: "mallory", signature: forged.signature)
        await expectRefused(.invalidSignature, "notAParty") {
            _ = try await fixture.enclave.call(
                CleanRoomOpen.self,
                .init(
                    contract: contract.canonicalBytes,
                    signatures: try parties.signatures(contract) + [stranger.canonicalBytes]
                )
            )
        }
    }

    @Test func refusesAContractNamingAnotherEnclave() async throws {
        let fixture = try await CleanRoomEnclaveFixture.load(config: EnclaveConfig(productID: 1, securityVersion: 2))
        defer { Task { await fixture.enclave.terminate() } }
        let identity = fixture.signed.identity
        let otherSigner = try Digest32(bytes: [UInt8](repeating: 9, count: 32))
        for (requirement, what) in [
            (Contract.EnclaveRequirement(signerID: otherSigner, productID: 1, minSecurityVersion: 1), "signer"),
            (Contract.EnclaveRequirement(signerID: identity.signerID, productID: 2, minSecurityVersion: 1), "product"),
            (Contract.EnclaveRequirement(signerID: identity.signerID, productID: 1, minSecurityVersion: 3), "version"),
            (
                Contract.EnclaveRequirement(
                    signerID: identity.signerID,
                    productID: 1,
                    minSecurityVersion: 1,
                    uniqueID: try Digest32(bytes: [UInt8](repeating: 7, count: 32))
                ), "build"
            ),
        ] {
            let contract = parties.contract(enclave: requirement)
            await expectRefused(.measurementMismatch, "enclaveMismatch") {
                _ = try await fixture.enclave.call(
                    CleanRoomOpen.self,
                    .init(contract: contract.canonicalBytes, signatures: try parties.signatures(contract))
                )
            }
            _ = what
        }
        // Its own signer and product at a lower minimum version, pinned to its own build: accepted.
        let contract = parties.contract(
            enclave: .init(
                signerID: identity.signerID,
                productID: 1,
                minSecurityVersion: 2,
                uniqueID: identity.uniqueID
            )
        )
        let opened = try await fixture.enclave.call(
            CleanRoomOpen.self,
            .init(contract: contract.canonicalBytes, signatures: try parties.signatures(contract))
        )
        #expect(opened.contractID == contract.id.hex)
    }

    @Test func servesOneContractAndStaysHalted() async throws {
        let fixture = try await CleanRoomEnclaveFixture.load()
        defer { Task { await fixture.enclave.terminate() } }
        let contract = parties.contract(enclave: fixture.requirement)
        _ = try await fixture.enclave.call(
            CleanRoomOpen.self,
            .init(contract: contract.canonicalBytes, signatures: try parties.signatures(contract))
        )
        // Another contract (one byte of the name changed): refused.
        var renamed = parties
        renamed.name += "!"
        let other = renamed.contract(enclave: fixture.requirement)
        await expectRefused(.callFailed, "wrongContract") {
            _ = try await fixture.enclave.call(
                CleanRoomOpen.self,
                .init(contract: other.canonicalBytes, signatures: try renamed.signatures(other))
            )
        }
        // A halt for another contract is refused; one for this contract halts it for good.
        await expectRefused(.callFailed, "wrongContract") {
            _ = try await fixture.enclave.call(CleanRoomHalt.self, try renamed.halt(other, by: "bank-a"))
        }
        let halted = try await fixture.enclave.call(CleanRoomHalt.self, try parties.halt(contract, by: "bank-a"))
        #expect(halted.status.phase == .halted)
        #expect(halted.status.halts == [.init(party: "bank-a", reason: "stop")])
        // This enclave keeps no durable state (no state OCALLs): the acknowledgement says the halt is in memory only.
        let acknowledgement = try HaltAcknowledgement(canonicalBytes: halted.acknowledgement)
        #expect(!acknowledgement.durable)
        #expect(!acknowledgement.counted)
        #expect(acknowledgement.generation == 0)
        await expectRefused(.callFailed, "halted") {
            _ = try await fixture.enclave.call(
                CleanRoomOpen.self,
                .init(contract: contract.canonicalBytes, signatures: try parties.signatures(contract))
            )
        }
    }

    @Test func refusesMalformedAndOversizedInput() async throws {
        let fixture = try await CleanRoomEnclaveFixture.load()
        defer { Task { await fixture.enclave.terminate() } }
        await expectRefused(.malformedInput, "malformed") {
            _ = try await fixture.enclave.call(CleanRoomOpen.self, .init(contract: Array("{".utf8), signatures: []))
        }
        await expectRefused(.limitExceeded, "limitExceeded") {
            _ = try await fixture.enclave.call(
                CleanRoomOpen.self,
                .init(contract: [], signatures: [[UInt8](repeating: 0x20, count: 5000)])
            )
        }
        let contract = parties.contract(enclave: fixture.requirement)
        await expectRefused(.malformedInput, "malformed") {
            _ = try await fixture.enclave.call(
                CleanRoomOpen.self,
                .init(
                    contract: contract.canonicalBytes,
                    signatures: try parties.signatures(contract),
                    challenge: "\"injected\": 1"
                )
            )
        }
        await expectRefused(.callFailed, "notActive") {
            _ = try await fixture.enclave.call(CleanRoomHalt.self, try parties.halt(contract, by: "bank-a"))
        }
    }
}
