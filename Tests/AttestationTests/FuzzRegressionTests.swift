import EnclaveCore
import Foundation
import Testing

@testable import Attestation

/// Inputs the fuzz targets (Fuzz/, `Scripts/fuzz.sh`) found crashing or hanging a parser, minimised, each kept with
/// the clean result it must now give. The comment on each names the target and what went wrong.
@Suite("Fuzz regressions: Attestation parsers")
struct FuzzRegressionTests {
    /// The reason of the `malformedInput` error `body` throws (records an issue for any other outcome).
    func malformedReason(_ body: () throws(EnclaveError) -> Void) -> String? {
        do {
            try body()
            Issue.record("no error thrown")
        } catch {
            #expect(error.code == .malformedInput, "\(error)")
            return error.reason
        }
        return nil
    }

    /// FuzzQEIdentity (and every JSON target): `abs(Int.min)` trapped on the integer -2^63 in the JSON reader.
    @Test func jsonReaderTakesTheSmallestInt64AsADouble() throws {
        let input = Array("-9223372036854775808".utf8)
        #expect(try JSONValue(parsing: input) == .double(-9_223_372_036_854_775_808))
        #expect(
            try JSONValue(parsing: Array("[-9223372036854775807]".utf8)) == .array([.double(-9.223372036854776e18)])
        )
        #expect(try JSONValue(parsing: Array("-9007199254740992".utf8)) == .integer(-9_007_199_254_740_992))
        let reason = malformedReason { () throws(EnclaveError) in _ = try QEIdentity(jsonBytes: input) }
        #expect(reason == "QE identity is not a JSON object")
        let tcb = malformedReason { () throws(EnclaveError) in
            _ = try TCBInfo(jsonBytes: Array(#"{"version": -9223372036854775808}"#.utf8))
        }
        #expect(tcb?.contains("lacks the integer version") == true, "\(tcb ?? "")")
    }
}
