import ArgumentParser
import CleanRoom
import CleanRoomHost
import CleanRoomInterface
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import KeyReleaseFormats
import NIOCore
import VaporCSQLite

extension EnclaveCommand.Bench {
    struct CleanRoomBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cleanroom",
            abstract: "Clean room ingest and query time against the same SQLite on plaintext in this process.",
            discussion: """
                Generates two owners' transaction CSVs (--rows each, fixed seed), encrypts them in the data file \
                format, and runs the real clean room path: a contract signed by both owners and an analyst names a \
                freshly signed CleanRoomEnclave; the host stores the ciphertext, the data keys reach the enclave \
                wrapped to its attested key (JWE), the enclave pulls the ciphertext through its OCALL, decrypts, \
                parses and inserts; approved queries (a filtered grouped aggregate, a grouped aggregate of the other \
                owner, a join of both) run as signed requests with thresholds on, each result encrypted and receipted. \
                The baseline is the same CSV parser and the same SQLite (same schema, one transaction, a prepared \
                insert) in this process on plaintext, then the same SQL with the same parameters, with \
                temp_store = MEMORY as in the clean room (which must keep temporary b-trees and sort runs off the \
                host's disk); a second baseline with SQLite's default settings is shown beside it (defaults: \
                grouped aggregates sort faster, joins build their automatic index slower). Rounds alternate \
                baselines and clean room; the medians' ratios are printed. Results are checked to agree (the clean room's \
                rows are the baseline's rows with enough distinct identities; the groups below the minimum, counted \
                on the baseline, are absent: the clean room never says how many it suppressed). Targets (issue \
                13): queries <= 1.5x plaintext, ingest >= 50% of plaintext. Opaque SQL's published overhead is 5.5-52x on TPC-H. \
                Build with -c release.
                """
        )

        @Option(help: "Rows per owner.")
        var rows = 1_000_000

        @Option(help: "Timed runs of each query on each side.")
        var rounds = 5

        @Option(help: "The clean room enclave image (default: CleanRoomEnclave beside this executable).")
        var enclave: String?

        @Flag(help: "Print JSON.")
        var json = false

        func validate() throws {
            guard (100...20_000_000).contains(rows) else { throw ValidationError("--rows is 100 to 20000000") }
            guard (1...1000).contains(rounds) else { throw ValidationError("--rounds is 1 to 1000") }
        }

        /// One approved query of the bench contract and the parameters it runs with.
        struct BenchQuery {
            var id: String
            var description: String
            var query: Contract.Query
            var parameters: [String: SQLValue]
        }

        /// Timings of one side, in milliseconds.
        struct Timings {
            var samples: [Double] = []
            var median: Double {
                let sorted = samples.sorted()
                return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
            }
            var p99: Double {
                let sorted = samples.sorted()
                return sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
            }
        }

        static let columns = [
            Contract.Column(name: "card", type: .text),
            Contract.Column(name: "merchant", type: .text),
            Contract.Column(name: "category", type: .text),
            Contract.Column(name: "amount", type: .integer),
            Contract.Column(name: "day", type: .date),
        ]
        static let minIdentities: Int64 = 10

        static func queries() -> [BenchQuery] {
            [
                BenchQuery(
                    id: "a-spend-by-merchant",
                    description: "bank A: spend by merchant, amount >= :min (grouped aggregate, filter)",
                    query: .init(
                        id: "a-spend-by-merchant",
                        sql: "SELECT merchant, COUNT(*) AS n, SUM(amount) AS total, COUNT(DISTINCT card) AS _ids_a_tx "
                            + "FROM a_tx WHERE amount >= :min GROUP BY merchant",
                        parameters: [.init(name: "min", type: .integer)],
                        runners: ["analyst"],
                        reads: ["a_tx"],
                        computed: ["n", "total"]
                    ),
                    parameters: ["min": .integer(100)]
                ),
                BenchQuery(
                    id: "b-daily",
                    description: "bank B: count and mean amount per day (grouped aggregate)",
                    query: .init(
                        id: "b-daily",
                        sql: "SELECT day, COUNT(*) AS n, AVG(amount) AS mean, COUNT(DISTINCT card) AS _ids_b_tx "
                            + "FROM b_tx GROUP BY day",
                        parameters: [],
                        runners: ["analyst"],
                        reads: ["b_tx"],
                        computed: ["n", "mean"]
                    ),
                    parameters: [:]
                ),
                BenchQuery(
                    id: "shared-cards-by-category",
                    description: "both: cards seen by both banks in one category, per category (join + aggregate)",
                    query: .init(
                        id: "shared-cards-by-category",
                        sql: "SELECT a.category, COUNT(*) AS pairs, SUM(b.amount) AS total_b, "
                            + "COUNT(DISTINCT a.card) AS _ids_a_tx, COUNT(DISTINCT b.card) AS _ids_b_tx "
                            + "FROM a_tx a JOIN b_tx b ON a.card = b.card AND a.category = b.category "
                            + "GROUP BY a.category",
                        parameters: [],
                        runners: ["analyst"],
                        reads: ["a_tx", "b_tx"],
                        computed: ["pairs", "total_b"]
                    ),
                    parameters: [:]
                ),
            ]
        }

        // MARK: - Data

        /// SplitMix64: a fixed seed gives the same data on every run.
        struct Generator {
            var state: UInt64
            mutating func next() -> UInt64 {
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                return z ^ (z >> 31)
            }
            mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
        }

        /// One owner's CSV: cards (half of them shared with the other owner), merchants (1% of rows at rare
        /// merchants whose groups fall below the threshold), 20 categories, amounts, days of 2025 (fewer for small runs).
        static func csv(owner: Int, rows: Int) -> [UInt8] {
            var random = Generator(state: 0x0C1E_A400 + UInt64(owner))
            let cards = max(rows / 5, 20)
            let firstCard = owner == 0 ? 0 : cards / 2
            let merchants = max(rows / 1000, 5)
            let rare = max(rows / 200, 1)
            var days: [[UInt8]] = []
            let lengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
            for (month, length) in lengths.enumerated() {
                for day in 1...length { days.append(Array(String(format: "2025-%02d-%02d", month + 1, day).utf8)) }
            }
            // At least ~100 rows a day, so that small runs still release daily groups.
            days = Array(days.prefix(max(1, min(days.count, rows / 100))))
            var out: [UInt8] = []
            out.reserveCapacity(rows * 48 + 64)
            out += Array("card,merchant,category,amount,day\n".utf8)
            func append(_ number: Int) { out += Array(String(number).utf8) }
            for _ in 0..<rows {
                out += Array("card-".utf8)
                append(firstCard + random.below(cards))
                if random.below(100) == 0 {
                    out += Array(",rare-".utf8)
                    append(random.below(rare))
                } else {
                    out += Array(",m-".utf8)
                    append(random.below(merchants))
                }
                out += Array(",cat-".utf8)
                append(random.below(20))
                out.append(UInt8(ascii: ","))
                append(1 + random.below(10_000))
                out.append(UInt8(ascii: ","))
                out += days[random.below(days.count)]
                out.append(0x0A)
            }
            return out
        }

        // MARK: - Run

        func run() async throws {
            let load = { () -> String in
                (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3)
                    .joined(separator: " ") ?? "?"
            }
            let loadBefore = load()
            let directory = NSTemporaryDirectory() + "enclavekit-bench-cleanroom-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }

            // The parties and the clean room enclave, signed with a fresh key.
            let bankA = P256.Signing.PrivateKey()
            let bankB = P256.Signing.PrivateKey()
            let analyst = P256.Signing.PrivateKey()
            let recipient = Curve25519.KeyAgreement.PrivateKey()
            let image = enclave ?? EnclaveCommand.CleanRoomCLI.Serve.besideExecutable("CleanRoomEnclave")
            let config = EnclaveConfig(productID: 7, securityVersion: 1, maxThreads: 4, maxMemory: 8 << 30)
            let measured = try EnclaveImage(path: image)
            let body = EnclaveSignature.Body(manifest: measured.manifest(config: config), config: config)
            let signature = try EnclaveSignature(signing: body, with: P256.Signing.PrivateKey())
            let signaturePath = directory + "/cleanroom.sig"
            try Data(signature.bytes).write(to: URL(fileURLWithPath: signaturePath))
            let storeDirectory = directory + "/host"
            var options = Enclave.Options()
            options.signaturePath = signaturePath
            options.ocalls = CleanRoomHost.ocalls(directory: storeDirectory)
            options.evidenceSource = .simulated
            let loaded = try await Enclave.load(path: image, options: options)
            let store = try await CleanRoomStore.open(directory: storeDirectory)
            defer {
                Task {
                    try? await store.close()
                    await loaded.terminate()
                }
            }
            let host = try await CleanRoomHost(store: store, enclave: loaded)

            let queries = Self.queries()
            var contract = Contract(
                name: "bench: two banks' transactions",
                parties: [
                    .init(name: "bank-a", roles: [.dataOwner], signingKey: bankA.publicKey),
                    .init(name: "bank-b", roles: [.dataOwner], signingKey: bankB.publicKey),
                    .init(name: "analyst", roles: [.analyst, .resultRecipient], signingKey: analyst.publicKey),
                ],
                dataSets: [("a_tx", "bank-a"), ("b_tx", "bank-b")].map { name, owner in
                    .init(
                        name: name,
                        owner: owner,
                        columns: Self.columns,
                        readable: Self.columns.map(\.name),
                        identity: "card"
                    )
                },
                queries: queries.map(\.query),
                outputRules: [
                    .init(owner: "bank-a", minIdentities: Self.minIdentities, neverOutput: ["a_tx.card"]),
                    .init(owner: "bank-b", minIdentities: Self.minIdentities, neverOutput: ["b_tx.card"]),
                ],
                recipients: [.init(party: "analyst", key: recipient.publicKey)],
                enclave: .init(signerID: signature.identity.signerID, productID: 7, minSecurityVersion: 1)
            )
            contract.sortLists()
            _ = try await host.submitContract(contract.canonicalBytes)
            for (party, key) in [("bank-a", bankA), ("bank-b", bankB), ("analyst", analyst)] {
                _ = try await host.submitSignature(
                    try ContractSignature(signing: contract, as: party, key: key).canonicalBytes
                )
            }
            let opened = try await host.attestation()

            // Both owners' data: generated, encrypted client-side, uploaded to the host as ciphertext.
            var ingest: [[String: Any]] = []
            var encryptSeconds = 0.0
            var cleanRoomIngestSeconds = 0.0
            var plainIngestSeconds = 0.0
            var defaultsIngestSeconds = 0.0
            var loadedRows = 0
            let plain = try PlainSQLite(contract: contract, tempInMemory: true)
            let defaults = try PlainSQLite(contract: contract, tempInMemory: false)
            for (owner, name) in ["a_tx", "b_tx"].enumerated() {
                let csv = Self.csv(owner: owner, rows: rows)
                let dataKey = SymmetricKey(size: .bits256)
                let encryptStart = DispatchTime.now().uptimeNanoseconds
                let file = try DataFileEncryptor.encrypt(
                    csv,
                    dataKey: dataKey,
                    contractID: contract.id,
                    dataSet: name
                )
                encryptSeconds += Self.seconds(since: encryptStart)
                let digest = SHA256.hash(data: file).map { String(format: "%02x", $0) }.joined()
                _ = try await host.storeDataSet(
                    name: name,
                    ownerSignature: try DataSetUploadSigning.sign(
                        contractID: contract.id,
                        dataSet: name,
                        sha256: digest,
                        version: 1,
                        key: owner == 0 ? bankA : bankB
                    ),
                    sha256: digest,
                    body: Self.pieces(file)
                )
                let wrapped = try Self.wrap(dataKey, for: opened)

                // Clean room: unwrap, pull the ciphertext through OCALLs, decrypt, parse, insert.
                let start = DispatchTime.now().uptimeNanoseconds
                let report = try await host.loadDataSet(name: name, wrappedKey: wrapped)
                let cleanRoomSeconds = Self.seconds(since: start)
                // Plaintext: the same parser and the same SQLite in this process.
                let plainStart = DispatchTime.now().uptimeNanoseconds
                let plainRows = try plain.ingest(name, csv: csv)
                let plainSeconds = Self.seconds(since: plainStart)
                let defaultsStart = DispatchTime.now().uptimeNanoseconds
                let defaultsRows = try defaults.ingest(name, csv: csv)
                let defaultsSeconds = Self.seconds(since: defaultsStart)
                guard report.rows == rows, plainRows == rows, defaultsRows == rows, report.badRowCount == 0 else {
                    throw RuntimeFailure(
                        message: "\(name): the clean room loaded \(report.rows) rows (\(report.badRowCount) bad), "
                            + "plaintext \(plainRows), of \(rows)"
                    )
                }
                cleanRoomIngestSeconds += cleanRoomSeconds
                plainIngestSeconds += plainSeconds
                defaultsIngestSeconds += defaultsSeconds
                loadedRows += rows
                ingest.append([
                    "dataSet": name,
                    "rows": rows,
                    "plaintextBytes": csv.count,
                    "ciphertextBytes": file.count,
                    "cleanRoomSeconds": cleanRoomSeconds,
                    "plaintextSeconds": plainSeconds,
                    "cleanRoomRowsPerSecond": Double(rows) / cleanRoomSeconds,
                    "plaintextRowsPerSecond": Double(rows) / plainSeconds,
                    "cleanRoomOverPlaintext": plainSeconds / cleanRoomSeconds,
                    "plaintextDefaultsRowsPerSecond": Double(rows) / defaultsSeconds,
                ])
            }
            let memoryAfterLoad = Self.memory(of: loaded.processID)

            // Queries: alternate plaintext and clean room runs so both see the same load.
            var results: [[String: Any]] = []
            for entry in queries {
                var cleanRoom = Timings()
                var plaintext = Timings()
                var plaintextDefaults = Timings()
                var agree = true
                var released = 0
                var suppressed = 0
                // One warm-up each (page cache, SQLite's first-use work), not timed.
                _ = try plain.run(entry.query.sql, entry.parameters)
                _ = try defaults.run(entry.query.sql, entry.parameters)
                _ = try await host.runQuery(try Self.request(contract, entry, key: analyst))
                for _ in 0..<rounds {
                    let plainStart = DispatchTime.now().uptimeNanoseconds
                    let baseline = try plain.run(entry.query.sql, entry.parameters)
                    plaintext.samples.append(Self.seconds(since: plainStart) * 1000)
                    let defaultsStart = DispatchTime.now().uptimeNanoseconds
                    let defaultsResult = try defaults.run(entry.query.sql, entry.parameters)
                    plaintextDefaults.samples.append(Self.seconds(since: defaultsStart) * 1000)

                    let request = try Self.request(contract, entry, key: analyst)
                    let start = DispatchTime.now().uptimeNanoseconds
                    let answer = try await host.runQuery(request)
                    cleanRoom.samples.append(Self.seconds(since: start) * 1000)

                    let table = try JSONDecoder().decode(
                        CleanRoomResultTable.self,
                        from: Data(
                            try ResultEnvelope(canonicalBytes: answer.result).open(as: "analyst", key: recipient)
                        )
                    )
                    released = table.rows.count
                    let checked = Self.agrees(table, baseline: baseline)
                    suppressed = checked.belowMinimum
                    agree = agree && checked.agree && Self.agrees(table, baseline: defaultsResult).agree
                }
                guard agree else {
                    throw RuntimeFailure(
                        message: "query \(entry.id): the clean room's result differs from the plaintext one"
                    )
                }
                results.append([
                    "query": entry.id,
                    "description": entry.description,
                    "cleanRoomMillis": [
                        "median": cleanRoom.median, "p99": cleanRoom.p99, "samples": cleanRoom.samples,
                    ],
                    "plaintextMillis": [
                        "median": plaintext.median, "p99": plaintext.p99, "samples": plaintext.samples,
                    ],
                    "cleanRoomOverPlaintext": plaintext.median > 0 ? cleanRoom.median / plaintext.median : 0,
                    "plaintextDefaultsMillis": [
                        "median": plaintextDefaults.median, "p99": plaintextDefaults.p99,
                        "samples": plaintextDefaults.samples,
                    ],
                    "cleanRoomOverPlaintextDefaults": plaintextDefaults.median > 0
                        ? cleanRoom.median / plaintextDefaults.median : 0,
                    "groupsReleased": released,
                    "groupsSuppressed": suppressed,
                    "resultsAgree": agree,
                ])
            }
            let memoryAtEnd = Self.memory(of: loaded.processID)
            let benchMemory = Self.memory(of: getpid())
            let loadAfter = load()

            let ingestRate = Double(loadedRows) / cleanRoomIngestSeconds
            let plainRate = Double(loadedRows) / plainIngestSeconds
            let object: [String: Any] = [
                "rowsPerOwner": rows,
                "owners": 2,
                "rounds": rounds,
                "minIdentities": Self.minIdentities,
                "ingest": [
                    "dataSets": ingest,
                    "cleanRoomRowsPerSecond": ingestRate,
                    "plaintextRowsPerSecond": plainRate,
                    "cleanRoomOverPlaintext": ingestRate / plainRate,
                    "plaintextDefaultsRowsPerSecond": Double(loadedRows) / defaultsIngestSeconds,
                    "clientEncryptSeconds": encryptSeconds,
                ],
                "queries": results,
                "enclaveMemory": [
                    "peakBytes": memoryAtEnd.peak,
                    "residentBytesAfterLoad": memoryAfterLoad.resident,
                    "residentBytesAtEnd": memoryAtEnd.resident,
                ],
                "benchProcessPeakBytes": benchMemory.peak,
                "targets": ["queryCleanRoomOverPlaintextMax": 1.5, "ingestCleanRoomOverPlaintextMin": 0.5],
                "plaintextSettings": "same SQLite library and schema, one transaction, prepared insert; "
                    + "temp_store = MEMORY like the clean room (plaintextDefaults: SQLite's defaults, temporary "
                    + "b-trees and sort runs in files)",
                "opaqueSQLPublishedOverhead": ["min": 5.5, "max": 52, "workload": "TPC-H"],
                "loadAverage": ["before": loadBefore, "after": loadAfter],
            ]
            if json {
                try Files.printJSON(object)
                return
            }
            print(
                "enclave bench cleanroom — \(rows) rows per owner, 2 owners, thresholds on (\(Self.minIdentities) "
                    + "distinct cards per group)"
            )
            print(
                "plaintext: same parser and SQLite in this process, temp_store = MEMORY like the clean room; "
                    + "defaults: SQLite's default settings"
            )
            print(
                "ingest (decrypt + parse + insert)        clean room          plaintext  clean room/plaintext"
                    + "     defaults"
            )
            for entry in ingest {
                print(
                    String(
                        format: "  %@ %9.0f rows/s %9.0f rows/s %8.0f%%           %9.0f rows/s",
                        Self.padded(entry["dataSet"] as? String ?? "", 34),
                        entry["cleanRoomRowsPerSecond"] as? Double ?? 0,
                        entry["plaintextRowsPerSecond"] as? Double ?? 0,
                        100 * (entry["cleanRoomOverPlaintext"] as? Double ?? 0),
                        entry["plaintextDefaultsRowsPerSecond"] as? Double ?? 0
                    )
                )
            }
            print(
                String(
                    format: "  %@ %9.0f rows/s %9.0f rows/s %8.0f%%   (target >= 50%%)",
                    Self.padded("both", 34),
                    ingestRate,
                    plainRate,
                    100 * ingestRate / plainRate
                )
            )
            print(
                Self.padded("query (ms: median / p99 of \(rounds))", 28) + Self.padded("      clean room", 20)
                    + Self.padded("       plaintext", 20) + "   ratio   defaults  ratio  groups released/suppressed"
            )
            for entry in results {
                let clean = entry["cleanRoomMillis"] as? [String: Any] ?? [:]
                let base = entry["plaintextMillis"] as? [String: Any] ?? [:]
                let defaults = entry["plaintextDefaultsMillis"] as? [String: Any] ?? [:]
                print(
                    String(
                        format: "  %@ %8.1f / %8.1f %8.1f / %8.1f %6.2fx %10.1f %5.2fx  %d/%d",
                        Self.padded(entry["query"] as? String ?? "", 26),
                        clean["median"] as? Double ?? 0,
                        clean["p99"] as? Double ?? 0,
                        base["median"] as? Double ?? 0,
                        base["p99"] as? Double ?? 0,
                        entry["cleanRoomOverPlaintext"] as? Double ?? 0,
                        defaults["median"] as? Double ?? 0,
                        entry["cleanRoomOverPlaintextDefaults"] as? Double ?? 0,
                        entry["groupsReleased"] as? Int ?? 0,
                        entry["groupsSuppressed"] as? Int ?? 0
                    )
                )
            }
            print("  target: clean room <= 1.5x plaintext; Opaque SQL (published, TPC-H): 5.5x-52x")
            print(
                String(
                    format: "enclave memory: peak %.0f MiB (VmHWM), resident %.0f MiB after load, %.0f MiB at end",
                    Double(memoryAtEnd.peak) / 1_048_576,
                    Double(memoryAfterLoad.resident) / 1_048_576,
                    Double(memoryAtEnd.resident) / 1_048_576
                )
            )
            print("load average: \(loadBefore) before, \(loadAfter) after")
        }

        // MARK: - Helpers

        static func padded(_ text: String, _ width: Int) -> String {
            text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0)
        }

        static func seconds(since start: UInt64) -> Double {
            Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }

        /// VmHWM and VmRSS of a process, in bytes (0 when /proc does not say).
        static func memory(of pid: Int32) -> (peak: Int, resident: Int) {
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else {
                return (0, 0)
            }
            func field(_ name: String) -> Int {
                guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else {
                    return 0
                }
                return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
            }
            return (field("VmHWM"), field("VmRSS"))
        }

        /// The file in 1 MiB pieces, as an upload body.
        static func pieces(_ bytes: [UInt8]) -> AsyncThrowingStream<ByteBuffer, any Error> {
            AsyncThrowingStream { continuation in
                var offset = 0
                while offset < bytes.count {
                    let end = min(offset + (1 << 20), bytes.count)
                    continuation.yield(ByteBuffer(bytes: bytes[offset..<end]))
                    offset = end
                }
                continuation.finish()
            }
        }

        /// The data key as a JWE to the key the clean room's evidence binds (what the key broker would release).
        static func wrap(_ dataKey: SymmetricKey, for opened: CleanRoomOpened) throws -> String {
            struct Runtime: Decodable { let keys: [WrapJWK] }
            let runtime = try JSONDecoder().decode(Runtime.self, from: Data(opened.runtimeData))
            guard let jwk = runtime.keys.first else { throw RuntimeFailure(message: "the clean room bound no key") }
            let raw = dataKey.withUnsafeBytes { Array($0) }
            return try ECDHESJWE.encrypt(raw, to: try jwk.wrapTarget(), keyID: jwk.kid)
        }

        /// A signed request for `entry` with a fresh nonce.
        static func request(
            _ contract: Contract,
            _ entry: BenchQuery,
            key: P256.Signing.PrivateKey
        ) throws -> CleanRoomQueryRequest {
            let nonce = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
            let parameters = entry.parameters.mapValues(QueryRequestSigning.text)
            let message = QueryRequestSigning.message(
                contractID: contract.id,
                queryID: entry.id,
                runner: "analyst",
                parameters: parameters,
                nonce: nonce
            )
            return CleanRoomQueryRequest(
                queryID: entry.id,
                runner: "analyst",
                parameters: parameters,
                nonce: nonce,
                signature: Base64URL.encode(Array(try key.signature(for: message).rawRepresentation))
            )
        }

        /// Whether the clean room's released rows are the baseline's rows with enough distinct identities (identity
        /// columns removed), and how many of the baseline's groups are below the minimum (absent from the released
        /// rows; the clean room itself never says how many it suppressed).
        static func agrees(
            _ table: CleanRoomResultTable,
            baseline: PlainSQLite.Result
        ) -> (agree: Bool, belowMinimum: Int) {
            let identity = baseline.columns.indices.filter {
                baseline.columns[$0].hasPrefix(Contract.identityCountPrefix)
            }
            var expected: [[String]] = []
            var small = 0
            for row in baseline.rows {
                let enough = identity.allSatisfy { index in
                    if case .integer(let count) = row[index] { return count >= minIdentities }
                    return false
                }
                guard enough else {
                    small += 1
                    continue
                }
                expected.append(
                    row.indices.filter { !identity.contains($0) }.map { QueryRequestSigning.text(row[$0]) }
                )
            }
            let columns = baseline.columns.indices.filter { !identity.contains($0) }.map { baseline.columns[$0] }
            let order = { (lhs: [String], rhs: [String]) in lhs.lexicographicallyPrecedes(rhs) }
            return (table.columns == columns && table.rows.sorted(by: order) == expected.sorted(by: order), small)
        }
    }
}

extension EnclaveCommand.Bench.CleanRoomBench {
    /// The baseline: a plain in-memory SQLite database (the same SQLite library, no lock-down, no memory accounting)
    /// in the bench's own process, with the contract's tables as the clean room makes them (`STRICT`, same column
    /// types).
    final class PlainSQLite {
        struct Result {
            var columns: [String]
            var rows: [[SQLValue]]
        }

        private let handle: OpaquePointer
        private let contract: Contract

        /// - Parameter tempInMemory: `PRAGMA temp_store = MEMORY`, as the clean room sets it.
        init(contract: Contract, tempInMemory: Bool) throws {
            var db: OpaquePointer?
            guard
                sqlite_nio_sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil)
                    == SQLITE_OK,
                let db
            else { throw RuntimeFailure(message: "cannot open an in-memory SQLite database") }
            handle = db
            self.contract = contract
            for set in contract.dataSets {
                let columns = set.columns.map { column in
                    let type =
                        switch column.type {
                        case .integer: "INTEGER"
                        case .real: "REAL"
                        case .text, .date: "TEXT"
                        }
                    return "\"\(column.name)\" \(type)"
                }
                try execute("CREATE TABLE \"\(set.name)\" (\(columns.joined(separator: ", "))) STRICT")
            }
            if tempInMemory { try execute("PRAGMA temp_store = MEMORY") }
        }

        deinit { sqlite_nio_sqlite3_close_v2(handle) }

        private var message: String { String(cString: sqlite_nio_sqlite3_errmsg(handle)) }

        private func execute(_ sql: String) throws {
            guard sqlite_nio_sqlite3_exec(handle, sql, nil, nil, nil) == SQLITE_OK else {
                throw RuntimeFailure(message: "SQLite: \(message)")
            }
        }

        private func prepare(_ sql: String) throws -> OpaquePointer {
            var statement: OpaquePointer?
            guard sqlite_nio_sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
                throw RuntimeFailure(message: "SQLite: \(message)")
            }
            return statement
        }

        private func bind(_ value: SQLValue, _ index: Int32, _ statement: OpaquePointer) {
            let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
            switch value {
            case .null: sqlite_nio_sqlite3_bind_null(statement, index)
            case .integer(let number): sqlite_nio_sqlite3_bind_int64(statement, index, number)
            case .real(let number): sqlite_nio_sqlite3_bind_double(statement, index, number)
            case .text(let text): sqlite_nio_sqlite3_bind_text(statement, index, text, -1, transient)
            }
        }

        /// Parse `csv` with the clean room's parser and insert its rows in one transaction; answers the rows loaded.
        func ingest(_ dataSet: String, csv: [UInt8]) throws -> Int {
            guard let set = contract.dataSet(dataSet) else { throw RuntimeFailure(message: "no data set \(dataSet)") }
            var parser = RowParser(dataSet: set)
            let placeholders = Array(repeating: "?", count: set.columns.count).joined(separator: ", ")
            let statement = try prepare("INSERT INTO \"\(set.name)\" VALUES (\(placeholders))")
            defer { sqlite_nio_sqlite3_finalize(statement) }
            try execute("BEGIN")
            func insert(_ rows: [[SQLValue]]) throws {
                for row in rows {
                    for (index, value) in row.enumerated() { bind(value, Int32(index + 1), statement) }
                    guard sqlite_nio_sqlite3_step(statement) == SQLITE_DONE else {
                        throw RuntimeFailure(message: "SQLite insert: \(message)")
                    }
                    sqlite_nio_sqlite3_reset(statement)
                }
            }
            var offset = 0
            while offset < csv.count {
                let end = min(offset + (1 << 20), csv.count)
                try insert(try parser.feed(Array(csv[offset..<end])))
                offset = end
            }
            try insert(try parser.finish())
            try execute("COMMIT")
            return parser.goodRowCount
        }

        /// Run `sql` with its parameters bound by name.
        func run(_ sql: String, _ parameters: [String: SQLValue]) throws -> Result {
            let statement = try prepare(sql)
            defer { sqlite_nio_sqlite3_finalize(statement) }
            for (name, value) in parameters {
                bind(value, sqlite_nio_sqlite3_bind_parameter_index(statement, ":" + name), statement)
            }
            let count = sqlite_nio_sqlite3_column_count(statement)
            let columns = (0..<count).map { String(cString: sqlite_nio_sqlite3_column_name(statement, $0)) }
            var rows: [[SQLValue]] = []
            while true {
                let status = sqlite_nio_sqlite3_step(statement)
                if status == SQLITE_DONE { break }
                guard status == SQLITE_ROW else { throw RuntimeFailure(message: "SQLite query: \(message)") }
                rows.append(
                    (0..<count).map { index in
                        switch sqlite_nio_sqlite3_column_type(statement, index) {
                        case SQLITE_INTEGER: .integer(sqlite_nio_sqlite3_column_int64(statement, index))
                        case SQLITE_FLOAT: .real(sqlite_nio_sqlite3_column_double(statement, index))
                        case SQLITE_NULL: .null
                        default:
                            sqlite_nio_sqlite3_column_text(statement, index).map { .text(String(cString: $0)) } ?? .null
                        }
                    }
                )
            }
            return Result(columns: columns, rows: rows)
        }
    }
}
