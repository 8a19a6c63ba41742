import Foundation

/// dcap-qvl (Phala Network's Rust DCAP verifier, through its Python wheel) run beside `enclave bench verify`, so the
/// two verifiers are measured alternately in one run on the same quote, collateral and time. A Python child process
/// keeps the quote and collateral loaded and times each `dcap_qvl.verify` call with `perf_counter_ns` on request.
struct DCAPQVLPeer {
    /// The Python program: loads the quote and the JSON bundle once, verifies once (its status must be a TCB status),
    /// then answers each `MODE COUNT` line with the nanoseconds of COUNT verifications as a JSON array.
    /// MODE `object`: `verify(quote, collateral, now)` with a `QuoteCollateralV3` made once (dcap-qvl keeps its PEM
    /// chains, DER CRLs and JSON as bytes and parses them in every `verify`). MODE `bundle`: the
    /// `QuoteCollateralV3.from_json` of the bundle text inside each timed call as well.
    static let program = """
        import sys, time, json
        import dcap_qvl
        quote = open(sys.argv[1], "rb").read()
        text = open(sys.argv[2]).read()
        now = int(sys.argv[3])
        collateral = dcap_qvl.QuoteCollateralV3.from_json(text)
        report = dcap_qvl.verify(quote, collateral, now)
        print(json.dumps({"version": dcap_qvl.__version__, "status": report.status}), flush=True)
        clock = time.perf_counter_ns
        verify = dcap_qvl.verify
        parse = dcap_qvl.QuoteCollateralV3.from_json
        for line in sys.stdin:
            mode, count = line.split()
            out = []
            if mode == "object":
                for _ in range(int(count)):
                    t = clock(); verify(quote, collateral, now); out.append(clock() - t)
            else:
                for _ in range(int(count)):
                    t = clock(); verify(quote, parse(text), now); out.append(clock() - t)
            print(json.dumps(out), flush=True)
        """

    enum Mode: String {
        case object
        case bundle
    }

    let process: Process
    let input: FileHandle
    let output: FileHandle
    var buffered: [UInt8] = []
    /// dcap-qvl's version and the TCB status it gave the quote.
    private(set) var version = ""
    private(set) var status = ""

    /// The Python to use: `explicit`, else `$ENCLAVEKIT_DCAP_QVL_PYTHON`, else `python3` on `PATH`; `nil` when none
    /// of them imports `dcap_qvl`.
    static func python(_ explicit: String?) -> String? {
        var candidates: [String] = []
        if let explicit { candidates.append(explicit) }
        if let variable = ProcessInfo.processInfo.environment["ENCLAVEKIT_DCAP_QVL_PYTHON"] {
            candidates.append(variable)
        }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            candidates.append(directory + "/python3")
        }
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            let probe = Process()
            probe.executableURL = URL(fileURLWithPath: candidate)
            probe.arguments = ["-c", "import dcap_qvl"]
            probe.standardOutput = FileHandle.nullDevice
            probe.standardError = FileHandle.nullDevice
            guard (try? probe.run()) != nil else { continue }
            probe.waitUntilExit()
            if probe.terminationStatus == 0 { return candidate }
        }
        return nil
    }

    /// Start the peer on `quote` (a binary quote file), `collateral` (a dcap-qvl JSON bundle) at Unix time `now`.
    init(python: String, quote: String, collateral: String, now: Int64) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", Self.program, quote, collateral, String(now)]
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.run()
        input = stdin.fileHandleForWriting
        output = stdout.fileHandleForReading
        let first = try readLine()
        guard let object = try? JSONSerialization.jsonObject(with: Data(first)) as? [String: Any],
            let version = object["version"] as? String, let status = object["status"] as? String
        else {
            stop()
            throw PeerError.failed(
                "dcap-qvl did not verify the quote (it printed \(String(decoding: first, as: UTF8.self)))"
            )
        }
        self.version = version
        self.status = status
    }

    /// The microseconds of `count` verifications in `mode`, as dcap-qvl's Python caller timed them.
    mutating func measure(_ mode: Mode, count: Int) throws -> [Double] {
        input.write(Data("\(mode.rawValue) \(count)\n".utf8))
        let line = try readLine()
        guard let nanoseconds = try? JSONSerialization.jsonObject(with: Data(line)) as? [Double],
            nanoseconds.count == count
        else {
            throw PeerError.failed("dcap-qvl answered \(String(decoding: line.prefix(200), as: UTF8.self))")
        }
        return nanoseconds.map { $0 / 1000 }
    }

    private mutating func readLine() throws -> [UInt8] {
        while true {
            if let newline = buffered.firstIndex(of: 0x0A) {
                let line = Array(buffered[..<newline])
                buffered.removeSubrange(...newline)
                return line
            }
            let chunk = output.availableData
            guard !chunk.isEmpty else { throw PeerError.failed("dcap-qvl exited") }
            buffered += chunk
        }
    }

    func stop() {
        try? input.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    enum PeerError: Error, CustomStringConvertible {
        case failed(String)
        var description: String {
            switch self {
            case .failed(let reason): reason
            }
        }
    }
}
