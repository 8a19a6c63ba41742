import CleanRoom
import CleanRoomHost
import EnclaveCore
import Foundation
import Testing

/// The owners' release policy follows the contract's optional build pin (review 6, E): with `enclave.uniqueID` it also
/// requires `x-ms-sgx-mrenclave`, without it the policy is as before.
@Suite("Clean room: the release policy of a contract that pins its build")
struct BuildPinPolicyTests {
    static func conditions(_ policy: [UInt8]) throws -> [[String: Any]] {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(policy)) as? [String: Any])
        let anyOf = try #require(object["anyOf"] as? [[String: Any]])
        return try #require(anyOf.first?["allOf"] as? [[String: Any]])
    }

    @Test func thePinIsAConditionOfTheReleasePolicy() throws {
        var requirement = Contract.EnclaveRequirement(
            signerID: try Digest32(bytes: [UInt8](repeating: 0x22, count: 32)),
            productID: 2,
            minSecurityVersion: 1
        )
        let plain = try Self.conditions(
            CleanRoomKeyRelease.releasePolicy(
                contract: Parties().contract(enclave: requirement),
                issuer: "https://127.0.0.1:8080",
                counterKey: nil
            )
        )
        #expect(!plain.contains { $0["claim"] as? String == "x-ms-sgx-mrenclave" })
        let build = try Digest32(bytes: [UInt8](repeating: 0x5C, count: 32))
        requirement.uniqueID = build
        let pinned = try Self.conditions(
            CleanRoomKeyRelease.releasePolicy(
                contract: Parties().contract(enclave: requirement),
                issuer: "https://127.0.0.1:8080",
                counterKey: nil
            )
        )
        let pin = pinned.first { $0["claim"] as? String == "x-ms-sgx-mrenclave" }
        #expect(pin?["equals"] as? String == build.hex, "\(pinned)")
        #expect(pinned.count == plain.count + 1)
    }
}
