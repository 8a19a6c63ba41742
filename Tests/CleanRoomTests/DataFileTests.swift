import CleanRoom
import Crypto
import EnclaveCore
import Testing

@Suite("Clean room data files and CSV")
struct DataFileTests {
    let key = SymmetricKey(size: .bits256)
    let contractID = try! Digest32(bytes: [UInt8](repeating: 1, count: 32))

    /// Plaintext of `count` bytes, encrypted with 4 KiB chunks; the header and chunk boundaries.
    func sample(_ count: Int = 4096 * 3 + 100) throws -> (plaintext: [UInt8], file: [UInt8], chunks: [Range<Int>]) {
        let plaintext = (0..<count).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let file = try DataFileEncryptor.encrypt(
            plaintext,
            dataKey: key,
            contractID: contractID,
            dataSet: "a_tx",
            chunkSize: 4096
        )
        let (_, bodyStart) = try #require(try DataFileHeader.parse(file))
        var chunks: [Range<Int>] = []
        var offset = bodyStart
        while offset < file.count {
            let length = Int(file[offset]) | Int(file[offset + 1]) << 8 | Int(file[offset + 2]) << 16
            chunks.append(offset..<(offset + 4 + length))
            offset += 4 + length
        }
        return (plaintext, file, chunks)
    }

    func decrypt(_ file: [UInt8], piece: Int = 1000) throws -> [UInt8] {
        var decryptor = DataFileDecryptor(dataKey: key, contractID: contractID, dataSet: "a_tx")
        var out: [UInt8] = []
        var offset = 0
        while offset < file.count {
            let end = min(offset + piece, file.count)
            out += try decryptor.feed(Array(file[offset..<end]))
            offset = end
        }
        try decryptor.finish()
        return out
    }

    @Test("round trip in any piece size; empty data too")
    func roundTrip() throws {
        let (plaintext, file, chunks) = try sample()
        #expect(chunks.count == 4)
        for piece in [1, 77, 4096, 1 << 20] { #expect(try decrypt(file, piece: piece) == plaintext) }
        let empty = try DataFileEncryptor.encrypt([], dataKey: key, contractID: contractID, dataSet: "a_tx")
        #expect(try decrypt(empty).isEmpty)
        // Two encryptions of the same data differ (random file ID, so a fresh key per file).
        let again = try DataFileEncryptor.encrypt(plaintext, dataKey: key, contractID: contractID, dataSet: "a_tx")
        #expect(again != file)
    }

    @Test("reordered, dropped, duplicated, truncated, flipped and spliced chunks are refused")
    func tampering() throws {
        let (_, file, chunks) = try sample()
        let header = Array(file[..<chunks[0].lowerBound])
        func assemble(_ order: [Int]) -> [UInt8] { header + order.flatMap { Array(file[chunks[$0]]) } }
        expectError(.dataTampered) { _ = try decrypt(assemble([1, 0, 2, 3])) }  // reordered
        expectError(.dataTampered) { _ = try decrypt(assemble([0, 2, 3])) }  // dropped
        expectError(.dataTampered) { _ = try decrypt(assemble([0, 0, 1, 2, 3])) }  // duplicated
        expectError(.dataTampered) { _ = try decrypt(assemble([0, 1, 2])) }  // truncated at a chunk boundary
        expectError(.dataTampered) { _ = try decrypt(Array(file.dropLast(5))) }  // truncated mid-chunk
        expectError(.dataTampered) { _ = try decrypt(file + [0]) }  // trailing byte
        expectError(.dataTampered) { _ = try decrypt(file + Array(file[chunks[3]])) }  // final chunk twice
        // A flipped bit anywhere in the body or the header.
        for position in stride(from: 0, to: file.count, by: 97) {
            var flipped = file
            flipped[position] ^= 0x10
            do {
                _ = try decrypt(flipped)
                Issue.record("a flipped bit at \(position) went unnoticed")
            } catch let error as CleanRoomError {
                #expect([.dataTampered, .wrongContract].contains(error.code), "at \(position): \(error)")
            }
        }
        // A chunk spliced from another file with the same key and the same header fields.
        let (_, other, otherChunks) = try sample()
        let spliced =
            header + Array(file[chunks[0]]) + Array(other[otherChunks[1]]) + Array(file[chunks[2]])
            + Array(file[chunks[3]])
        expectError(.dataTampered) { _ = try decrypt(spliced) }
        // The wrong key.
        var wrongKey = DataFileDecryptor(dataKey: SymmetricKey(size: .bits256), contractID: contractID, dataSet: "a_tx")
        expectError(.dataTampered) { _ = try wrongKey.feed(file) }
    }

    @Test("a file for another contract or data set is refused before any plaintext")
    func wrongContract() throws {
        let (_, file, _) = try sample()
        var other = DataFileDecryptor(
            dataKey: key,
            contractID: try Digest32(bytes: [UInt8](repeating: 2, count: 32)),
            dataSet: "a_tx"
        )
        expectError(.wrongContract) { _ = try other.feed(file) }
        var otherSet = DataFileDecryptor(dataKey: key, contractID: contractID, dataSet: "b_tx")
        expectError(.wrongContract) { _ = try otherSet.feed(file) }
        expectError(.dataTampered) { _ = try decrypt(Array("PK\u{3}\u{4}not a data file at all, no".utf8)) }
        expectError(.dataTampered) { _ = try decrypt(Array(file.prefix(20))) }
    }

    @Test("CSV: RFC 4180 quoting, CRLF, line numbers of multi-line records")
    func csv() {
        var reader = CSVReader()
        let text = "a,b,c\r\n1,\"x, \"\"y\"\"\",3\r\n\n2,\"multi\nline\",\r\n3,\"\",z"
        var records = reader.feed(Array(text.utf8))
        records += reader.finish()
        #expect(records.count == 4)
        #expect(records.map(\.line) == [1, 2, 4, 6])
        #expect(records[1].fields.map { String(decoding: $0, as: UTF8.self) } == ["1", "x, \"y\"", "3"])
        #expect(records[2].fields.map { String(decoding: $0, as: UTF8.self) } == ["2", "multi\nline", ""])
        #expect(records[3].quoted == [false, true, false])
        #expect(records.allSatisfy { $0.error == nil })
        // Malformed records come back flagged, and the reader resynchronises at the next line.
        var bad = CSVReader()
        var out = bad.feed(Array("x,ab\"c,1\n\"q\"z,2\nok,3\n\"open".utf8))
        out += bad.finish()
        #expect(out.map(\.line) == [1, 2, 3, 4])
        #expect(out.map { $0.error != nil } == [true, true, false, true])
    }

    @Test("rows that do not fit the schema are counted and reported by line, never dropped silently")
    func badRows() throws {
        let set = Fixture().contract.dataSet("a_tx")!
        var parser = RowParser(dataSet: set)
        let csv = """
            card,merchant,amount,score,day,secret
            c1,m1,10,0.5,2026-01-31,s
            c2,m1,ten,0.5,2026-01-31,s
            c3,m1,10,0.5,2026-02-30,s
            c4,m1,10
            c5,"m1",10,1e3,2026-02-28,
            c6,m1,10,nan,2026-02-28,s
            c7,m1,10,0.5,2026-02-28,s,extra
            """
        var rows = try parser.feed(Array(csv.utf8))
        rows += try parser.finish()
        #expect(rows.count == 2)
        #expect(rows[1] == [.text("c5"), .text("m1"), .integer(10), .real(1000), .text("2026-02-28"), .null])
        #expect(parser.badRowCount == 5)
        #expect(parser.badRows.map(\.line) == [3, 4, 5, 7, 8])
        #expect(parser.badRows[0].reason == "column amount is not a valid integer")
        #expect(parser.badRows[2].reason == "3 fields, expected 6")
        // No value of the data in any reason.
        #expect(!parser.badRows.contains { $0.reason.contains("ten") || $0.reason.contains("c4") })
        // A header that does not match the contract is refused outright.
        var wrong = RowParser(dataSet: set)
        #expect(throws: CleanRoomError(.badRows, "")) { _ = try wrong.feed(Array("card,amount\nx,1\n".utf8)) }
        var none = RowParser(dataSet: set)
        #expect(throws: CleanRoomError(.badRows, "")) { _ = try none.finish() }
    }
}
