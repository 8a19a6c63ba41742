import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The tests' temporary directories live under one root per test process (removed at exit); roots a dead process
/// left are reaped once they have been still for an hour, and nobody else's are.
@Suite struct TestDirectoriesTests {
    @Test func directoriesLiveUnderThisProcesssRoot() throws {
        let directory = try Fixtures.temporaryDirectory("probe")
        #expect(directory.hasPrefix(TestDirectories.root + "/probe-"))
        let rootName = (TestDirectories.root as NSString).lastPathComponent
        #expect(rootName.hasPrefix(TestDirectories.prefix + "\(getpid())-"))
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) && isDirectory.boolValue)
    }

    @Test func onlyStillRootsOfDeadProcessesAreReaped() throws {
        let base = try Fixtures.temporaryDirectory("reap") + "/"
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        let dead = finished.processIdentifier
        let hourAndAMinuteAgo = Date().addingTimeInterval(-3660)
        let names = [
            "deadAndStill": TestDirectories.prefix + "\(dead)-aaaa",
            "deadButRecent": TestDirectories.prefix + "\(dead)-bbbb",
            "aliveAndStill": TestDirectories.prefix + "\(getpid())-cccc",
            "notARoot": "enclavekit-other-\(dead)-dddd",
            "noPID": TestDirectories.prefix + "x-eeee",
        ]
        for (role, name) in names {
            let path = base + name
            try FileManager.default.createDirectory(atPath: path + "/inside", withIntermediateDirectories: true)
            if role != "deadButRecent" {
                try FileManager.default.setAttributes([.modificationDate: hourAndAMinuteAgo], ofItemAtPath: path)
            }
        }
        TestDirectories.reapStaleRoots(in: base)
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: base))
        #expect(!left.contains(names["deadAndStill"]!))
        for role in ["deadButRecent", "aliveAndStill", "notARoot", "noPID"] {
            #expect(left.contains(names[role]!), "\(role) was removed")
        }
    }
}
