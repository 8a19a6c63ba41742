import CleanRoom
import CleanRoomHost
import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing

/// The read-only status page: every value escaped, a CSP that allows no script, and a page that renders in a real
/// browser (headless Chromium: the DOM it builds and a screenshot that is not blank).
@Suite("Clean room status page", .serialized)
struct StatusPageTests {
    /// A contract whose name and halt reason try to inject markup.
    static let hostileName = #"<script>document.title='owned'</script><img src=x onerror=alert(1)> & "quotes" 'too'"#

    @Test func escapesEveryValue() {
        #expect(
            StatusPage.escape(#"<a href="x" title='y'>&</a>"#)
                == "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        )
        #expect(StatusPage.escape("a\u{0}b\u{1B}c") == "a\u{FFFD}b\u{FFFD}c")
        let page = StatusPage.render(
            HostStatus(
                contractID: "ab<cd",
                contractName: Self.hostileName,
                phase: "draft<",
                parties: [.init(name: "<b>", roles: ["analyst"], signed: false, haltReason: "<i>why</i>")],
                dataSets: [.init(name: "t<", owner: "o>", uploaded: false)],
                enclave: nil,
                enclaveRefusal: "x<y"
            )
        )
        #expect(!page.contains("<script"))
        #expect(!page.contains("<img"))
        #expect(!page.contains("<b>"))
        #expect(!page.contains("<i>"))
        #expect(page.contains("&lt;script&gt;"))
        #expect(page.contains("ab&lt;cd"))
    }

    /// A host with a hostile-named contract signed by two of three parties and halted by none.
    static func host() async throws -> (CleanRoomHostRoutesTests.Harness, Contract) {
        let harness = try await CleanRoomHostRoutesTests.harness()
        var parties = Parties()
        parties.name = hostileName
        let contract = parties.contract(enclave: harness.fixture.requirement)
        _ = try await harness.host.submitContract(contract.canonicalBytes)
        for signature in try parties.signatures(contract, by: ["analyst", "bank-a"]) {
            _ = try await harness.host.submitSignature(signature)
        }
        return (harness, contract)
    }

    @Test func servedWithAContentSecurityPolicy() async throws {
        let (harness, contract) = try await Self.host()
        defer { Task { await harness.close() } }
        let app = Application(router: CleanRoomServer.router(host: harness.host))
        try await app.test(.router) { client in
            let response = try await client.execute(uri: "/", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/html; charset=utf-8")
            let csp = try #require(response.headers[.contentSecurityPolicy])
            #expect(csp.contains("default-src 'none'"))
            #expect(!csp.contains("script-src"))
            #expect(response.headers[.xContentTypeOptions] == "nosniff")
            let page = String(buffer: response.body)
            #expect(page.contains(contract.id.hex))
            #expect(!page.contains("<script"))
            #expect(page.contains("not signed"))
        }
    }

    /// Chromium, or nil (then the test is skipped with a printed reason, unless independent verifiers are required).
    static func chromium() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            for name in ["chromium", "chromium-browser", "google-chrome"] {
                let candidate = "\(directory)/\(name)"
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
        }
        return nil
    }

    @Test func rendersInHeadlessChromium() async throws {
        guard let chromium = Self.chromium() else {
            if ProcessInfo.processInfo.environment["ENCLAVEKIT_REQUIRE_INDEPENDENT_VERIFIERS"] == "1" {
                Issue.record("ENCLAVEKIT_REQUIRE_INDEPENDENT_VERIFIERS=1 but chromium is not installed")
            } else {
                print("StatusPageTests: skipped: chromium is not installed (apt-get install chromium)")
            }
            return
        }
        let (harness, contract) = try await Self.host()
        defer { Task { await harness.close() } }
        let running = try await CleanRoomServer.start(host: harness.host, tls: nil)
        defer { Task { await running.stop() } }
        let url = "http://127.0.0.1:\(running.port)/"
        let directory = try Fixtures.temporaryDirectory()
        let common = [
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
            "--user-data-dir=\(directory)/profile", "--hide-scrollbars",
        ]
        // The DOM the browser built: the values as text, no element injected, the title untouched.
        let dom = try await Self.run(chromium, common + ["--dump-dom", url])
        #expect(dom.status == 0, "\(dom.output.suffix(2000))")
        #expect(dom.output.contains(contract.id.hex))
        #expect(dom.output.contains("<title>EnclaveKit clean room</title>"))
        #expect(dom.output.contains("not signed"))
        #expect(dom.output.contains("&lt;script&gt;document.title="))
        #expect(!dom.output.contains("<script>"))
        #expect(!dom.output.contains("<img"))
        // A screenshot of the page: a PNG of the window's size that is not blank.
        let png = directory + "/status.png"
        let shot = try await Self.run(chromium, common + ["--screenshot=\(png)", "--window-size=1100,800", url])
        #expect(shot.status == 0, "\(shot.output.suffix(2000))")
        let check = try await Self.run(
            "/usr/bin/env",
            ["python3", "-c", Self.pngCheck, png]
        )
        #expect(check.status == 0, "\(check.output)")
        let figures = check.output.split(separator: " ").compactMap {
            Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        #expect(figures.count == 4, "\(check.output)")
        if figures.count == 4 {
            #expect(figures[0] == 1100 && figures[1] == 800, "screenshot size \(figures[0])x\(figures[1])")
            #expect(figures[2] >= 4, "only \(figures[2]) distinct colours: the page looks blank")
            #expect(figures[3] >= 1000, "only \(figures[3]) pixels differ from the background: the page looks blank")
        }
    }

    /// Decodes an 8-bit RGB/RGBA PNG with zlib and struct (no imaging library): prints width, height, the number of
    /// distinct colours and the number of pixels that differ from the top-left one.
    static let pngCheck = #"""
        import struct, sys, zlib
        data = open(sys.argv[1], "rb").read()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
        pos, idat, width = 8, b"", None
        while pos < len(data):
            length, kind = struct.unpack(">I4s", data[pos:pos + 8])
            body = data[pos + 8:pos + 8 + length]
            if kind == b"IHDR":
                width, height, depth, colour = struct.unpack(">IIBB", body[:10])
                assert depth == 8 and colour in (2, 6), f"unsupported PNG depth {depth} colour {colour}"
                bpp = 3 if colour == 2 else 4
            elif kind == b"IDAT":
                idat += body
            pos += 12 + length
        raw = zlib.decompress(idat)
        stride = width * bpp
        previous = bytearray(stride)
        colours, differing, first = set(), 0, None
        for y in range(height):
            line = raw[y * (stride + 1):(y + 1) * (stride + 1)]
            kind, row = line[0], bytearray(line[1:])
            for i in range(stride):
                a = row[i - bpp] if i >= bpp else 0
                b = previous[i]
                c = previous[i - bpp] if i >= bpp else 0
                if kind == 1: row[i] = (row[i] + a) & 255
                elif kind == 2: row[i] = (row[i] + b) & 255
                elif kind == 3: row[i] = (row[i] + (a + b) // 2) & 255
                elif kind == 4:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            for x in range(0, stride, bpp):
                pixel = bytes(row[x:x + 3])
                if first is None: first = pixel
                colours.add(pixel)
                if pixel != first: differing += 1
            previous = row
        print(width, height, len(colours), differing)
        """#

    /// Run a program without blocking a thread of the cooperative pool; killed after 300 s (a hang guard: Chromium and
    /// the pure-Python PNG check take seconds alone, many times that on a loaded CI machine).
    static func run(_ executable: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = URL(fileURLWithPath: try Fixtures.temporaryDirectory("crhost") + "/output")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
                return
            }
            let pid = process.processIdentifier
            DispatchQueue.global().asyncAfter(deadline: .now() + 300) {
                if process.isRunning { kill(pid, SIGKILL) }
            }
        }
        try handle.close()
        defer { try? FileManager.default.removeItem(at: output) }
        return (status, String(decoding: try Data(contentsOf: output), as: UTF8.self))
    }
}
