import Foundation
import TestSupport
import Testing

/// The main job, Scripts/cleanroom.sh, run as a user runs it (on the products this test run built, in its own
/// directory): every step must behave as stated (the script exits 0 only then) and it ends with its summary line.
/// It takes ports 8080 and 8443 (`enclave serve`'s); nothing else in the suite does.
@Suite("Scripts/cleanroom.sh (the main job)", .serialized)
struct CleanRoomScriptTests {
    static var repository: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    @Test("The clean room main job runs end to end and says so in one line")
    func mainJob() throws {
        _ = Fixtures.platformDirectory
        let work = try Fixtures.temporaryDirectory() + "/cleanroom-demo"
        let result = try ChildProcess.run(
            "/usr/bin/timeout",
            // A hang guard: far above the script's own time, as CI runs it beside the whole suite on two cores.
            ["480", "bash", Self.repository + "/Scripts/cleanroom.sh"],
            environment: ["CLEANROOM_BIN": ChildProcess.buildDirectory, "CLEANROOM_WORK": work],
            currentDirectory: Self.repository
        )
        #expect(result.status == 0, "\(result.output.suffix(3000))")
        let summary = try #require(result.output.split(separator: "\n").last, "no output")
        #expect(summary.hasPrefix("cleanroom.sh: OK in "), "\(summary)")
        for step in [
            "keys released to the clean room and data loaded", "unapproved query refused",
            "receipt verified and result opened", "no plaintext in the host store", "wrong-contract clean room refused",
            "wrong-signer enclave refused",
        ] {
            #expect(summary.contains(step), "\(step) missing from: \(summary)")
        }
        #expect(result.output.contains("PolicyNotSatisfied"), "\(result.output.suffix(2000))")
    }
}
