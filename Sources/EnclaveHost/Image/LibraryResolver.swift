internal import EnclaveCore
internal import Foundation

/// Finds every file the dynamic loader maps into an image: its interpreter and the transitive closure of its
/// `DT_NEEDED` libraries, searched the way glibc's `ld.so` does with an empty environment (RPATH, RUNPATH, the
/// `ld.so.conf` directories, then the default directories). Paths are returned with symbolic links resolved, as
/// `/proc/PID/maps` shows them.
///
/// The enclave later reports what was really mapped and the loader refuses any file this resolution missed, so a
/// divergence from `ld.so` fails closed.
struct LibraryResolver {
    var systemDirectories: [String]

    init() {
        systemDirectories =
            Self.configuredDirectories() + [
                "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
                "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
            ]
    }

    /// The resolved, sorted, unique real paths of the interpreter and all libraries `image` needs.
    func trustedFiles(for image: ELFImage) throws(EnclaveError) -> [String] {
        var result = Set<String>()
        if let interpreter = image.interpreter {
            guard let real = Self.realPath(interpreter) else {
                throw .imageUnreadable("ELF interpreter \(interpreter) not found")
            }
            result.insert(real)
        }
        // Breadth-first over DT_NEEDED; the main image's $ORIGIN is unusable (it runs from a sealed memfd).
        var queue: [(name: String, requester: ELFImage, requesterDirectory: String?)] = image.needed.map {
            ($0, image, nil)
        }
        var seenNames = Set<String>()
        while !queue.isEmpty {
            let item = queue.removeFirst()
            guard seenNames.insert(item.name).inserted else { continue }
            guard let path = find(item.name, requester: item.requester, origin: item.requesterDirectory) else {
                throw .imageUnreadable("shared library \(item.name) not found")
            }
            guard result.insert(path).inserted else { continue }
            guard result.count <= EnclaveManifest.maxTrustedFiles else {
                throw .limitExceeded("more than \(EnclaveManifest.maxTrustedFiles) shared libraries")
            }
            let library = try ELFImage(bytes: Self.readFile(path))
            let directory = (path as NSString).deletingLastPathComponent
            for name in library.needed { queue.append((name, library, directory)) }
        }
        return result.sorted()
    }

    private func find(_ name: String, requester: ELFImage, origin: String?) -> String? {
        if name.contains("/") { return Self.realPath(name) }
        var directories: [String] = []
        if requester.runpath.isEmpty { directories += requester.rpath }
        directories += requester.runpath
        directories = directories.compactMap { directory in
            guard directory.contains("$ORIGIN") || directory.contains("${ORIGIN}") else { return directory }
            guard let origin else { return nil }
            return directory.replacingOccurrences(of: "${ORIGIN}", with: origin)
                .replacingOccurrences(of: "$ORIGIN", with: origin)
        }
        directories += systemDirectories
        for directory in directories {
            let candidate = directory + "/" + name
            if let real = Self.realPath(candidate), Self.isELF64(real) { return real }
        }
        return nil
    }

    static func realPath(_ path: String) -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return URL(fileURLWithPath: path).resolvingSymlinksInPath().path
    }

    static func isELF64(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        guard let head = try? handle.read(upToCount: 6), head.count == 6 else { return false }
        return Array(head) == [0x7F, 0x45, 0x4C, 0x46, 2, 1]
    }

    static func readFile(_ path: String) throws(EnclaveError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .imageUnreadable("cannot read \(path)")
        }
        return [UInt8](data)
    }

    /// Directories listed in /etc/ld.so.conf and the files it includes (one level of `include` globs).
    private static func configuredDirectories() -> [String] {
        var directories: [String] = []
        func parse(_ path: String, depth: Int) {
            guard depth < 4, let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
            for rawLine in text.split(separator: "\n") {
                let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
                    .trimmingCharacters(in: .whitespaces)
                if line.isEmpty { continue }
                if line.hasPrefix("include ") {
                    let pattern = String(line.dropFirst("include ".count)).trimmingCharacters(in: .whitespaces)
                    let directory = (pattern as NSString).deletingLastPathComponent
                    let suffix = pattern.hasSuffix("*.conf") ? ".conf" : ""
                    let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
                    for entry in entries.sorted() where suffix.isEmpty || entry.hasSuffix(suffix) {
                        parse(directory + "/" + entry, depth: depth + 1)
                    }
                } else if line.hasPrefix("/") {
                    directories.append(line)
                }
            }
        }
        parse("/etc/ld.so.conf", depth: 0)
        return directories
    }
}
