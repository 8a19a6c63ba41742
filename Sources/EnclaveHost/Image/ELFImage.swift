internal import EnclaveCore

/// The dynamic-linking facts of a 64-bit little-endian ELF file: its interpreter, the libraries it needs and its
/// library search paths. Parsed defensively: every offset and size is checked against the file.
struct ELFImage {
    /// `PT_INTERP`, e.g. `/lib64/ld-linux-x86-64.so.2`; `nil` for a static executable or a library.
    var interpreter: String?
    /// `DT_NEEDED` entries, in order.
    var needed: [String]
    /// `DT_RPATH` entries (used only when there is no `DT_RUNPATH`).
    var rpath: [String]
    /// `DT_RUNPATH` entries.
    var runpath: [String]

    private struct Segment {
        var type: UInt32
        var offset: UInt64
        var virtualAddress: UInt64
        var fileSize: UInt64
    }

    init(bytes: [UInt8]) throws(EnclaveError) {
        guard bytes.count >= 64, bytes[0] == 0x7F, bytes[1] == 0x45, bytes[2] == 0x4C, bytes[3] == 0x46 else {
            throw .imageUnreadable("not an ELF file")
        }
        guard bytes[4] == 2, bytes[5] == 1 else { throw .imageUnreadable("only 64-bit little-endian ELF is supported") }
        func u16(_ at: Int) throws(EnclaveError) -> UInt16 { try Self.read(bytes, at, UInt16.self) }
        func u32(_ at: Int) throws(EnclaveError) -> UInt32 { try Self.read(bytes, at, UInt32.self) }
        func u64(_ at: Int) throws(EnclaveError) -> UInt64 { try Self.read(bytes, at, UInt64.self) }

        let headerOffset = try u64(32)
        let headerSize = Int(try u16(54))
        let headerCount = Int(try u16(56))
        guard headerSize >= 56, headerCount <= 4096, let base = Int(exactly: headerOffset) else {
            throw .imageUnreadable("malformed ELF program header table")
        }
        var segments: [Segment] = []
        for index in 0..<headerCount {
            let at = base + index * headerSize
            segments.append(
                Segment(
                    type: try u32(at),
                    offset: try u64(at + 8),
                    virtualAddress: try u64(at + 16),
                    fileSize: try u64(at + 32)
                )
            )
        }

        func fileOffset(ofAddress address: UInt64) -> Int? {
            for segment in segments where segment.type == 1 {  // PT_LOAD
                if address >= segment.virtualAddress, address - segment.virtualAddress < segment.fileSize {
                    return Int(exactly: segment.offset + (address - segment.virtualAddress))
                }
            }
            return nil
        }

        func string(at offset: Int, limit: Int) throws(EnclaveError) -> String {
            guard offset >= 0, offset < limit, limit <= bytes.count else {
                throw .imageUnreadable("ELF string offset out of range")
            }
            guard let end = bytes[offset..<limit].firstIndex(of: 0) else {
                throw .imageUnreadable("unterminated ELF string")
            }
            guard let text = String(validating: bytes[offset..<end], as: UTF8.self) else {
                throw .imageUnreadable("ELF string is not UTF-8")
            }
            return text
        }

        interpreter = nil
        if let interp = segments.first(where: { $0.type == 3 }) {  // PT_INTERP
            guard let start = Int(exactly: interp.offset), let size = Int(exactly: interp.fileSize),
                size <= 4096, start <= bytes.count - size
            else {
                throw .imageUnreadable("ELF interpreter out of range")
            }
            interpreter = try string(at: start, limit: start + size)
        }

        needed = []
        rpath = []
        runpath = []
        guard let dynamic = segments.first(where: { $0.type == 2 }) else { return }  // PT_DYNAMIC
        guard let start = Int(exactly: dynamic.offset), let size = Int(exactly: dynamic.fileSize),
            size <= bytes.count, start <= bytes.count - size
        else {
            throw .imageUnreadable("ELF dynamic section out of range")
        }
        var neededOffsets: [UInt64] = []
        var rpathOffset: UInt64?
        var runpathOffset: UInt64?
        var stringTable: UInt64?
        var stringTableSize: UInt64?
        var at = start
        scan: while at + 16 <= start + size {
            let tag = try u64(at)
            let value = try u64(at + 8)
            at += 16
            switch tag {
            case 0: break scan  // DT_NULL
            case 1: neededOffsets.append(value)
            case 5: stringTable = value
            case 10: stringTableSize = value
            case 15: rpathOffset = value
            case 29: runpathOffset = value
            default: continue
            }
        }
        guard !neededOffsets.isEmpty || rpathOffset != nil || runpathOffset != nil else { return }
        guard let tableAddress = stringTable, let tableSize = stringTableSize.flatMap({ Int(exactly: $0) }),
            let table = fileOffset(ofAddress: tableAddress), tableSize <= bytes.count, table <= bytes.count - tableSize
        else {
            throw .imageUnreadable("ELF string table out of range")
        }
        func entry(_ offset: UInt64) throws(EnclaveError) -> String {
            guard let relative = Int(exactly: offset), relative < tableSize else {
                throw .imageUnreadable("ELF dynamic string out of range")
            }
            return try string(at: table + relative, limit: table + tableSize)
        }
        for offset in neededOffsets { needed.append(try entry(offset)) }
        if let rpathOffset { rpath = try entry(rpathOffset).split(separator: ":").map(String.init) }
        if let runpathOffset { runpath = try entry(runpathOffset).split(separator: ":").map(String.init) }
    }

    private static func read<I: FixedWidthInteger & UnsignedInteger>(
        _ bytes: [UInt8],
        _ at: Int,
        _: I.Type
    )
        throws(EnclaveError) -> I
    {
        let size = MemoryLayout<I>.size
        guard at >= 0, at <= bytes.count - size else { throw .imageUnreadable("ELF header field out of range") }
        var value: I = 0
        for i in 0..<size { value |= I(bytes[at + i]) << (8 * i) }
        return value
    }
}
