internal import Foundation

/// The signed configuration of an enclave, read from JSON:
///
/// ```json
/// { "productID": 1, "securityVersion": 2, "debug": false, "maxThreads": 4, "maxMemory": "512MiB" }
/// ```
///
/// `productID` and `securityVersion` are required; `debug` defaults to `false`, `maxThreads` to 4 and `maxMemory`
/// to 1 GiB. `maxMemory` is bytes, as a number or a string with a `KiB`, `MiB` or `GiB` suffix. Unknown keys are
/// rejected so that a typo never silently falls back to a default.
public struct EnclaveConfig: Hashable, Sendable, Codable {
    /// The product ID (0…65535).
    public var productID: UInt16
    /// The security version number (0…65535).
    public var securityVersion: UInt16
    /// Whether the enclave is debuggable.
    public var debug: Bool
    /// How many ECALLs the enclave serves at once (1…1024).
    public var maxThreads: UInt32
    /// The enclave process's address-space limit in bytes (64 MiB … 1 TiB).
    public var maxMemory: UInt64

    /// The bounds ``validate()`` enforces.
    public static let threadRange: ClosedRange<UInt32> = 1...1024
    /// The address-space limits, in bytes, ``validate()`` accepts for ``maxMemory``: 64 MiB through 1 TiB.
    public static let memoryRange: ClosedRange<UInt64> = (64 << 20)...(1 << 40)

    /// Create a configuration.
    public init(
        productID: UInt16,
        securityVersion: UInt16,
        debug: Bool = false,
        maxThreads: UInt32 = 4,
        maxMemory: UInt64 = 1 << 30
    ) {
        self.productID = productID
        self.securityVersion = securityVersion
        self.debug = debug
        self.maxThreads = maxThreads
        self.maxMemory = maxMemory
    }

    /// Check the ranges of ``maxThreads`` and ``maxMemory``.
    /// - Throws: ``EnclaveError`` `invalidConfiguration` naming the value out of range.
    public func validate() throws(EnclaveError) {
        guard Self.threadRange.contains(maxThreads) else {
            throw .invalidConfiguration("maxThreads must be in \(Self.threadRange), got \(maxThreads)")
        }
        guard Self.memoryRange.contains(maxMemory) else {
            throw .invalidConfiguration("maxMemory must be between 64 MiB and 1 TiB, got \(maxMemory) bytes")
        }
    }

    /// Parse and validate a JSON configuration.
    /// - Throws: ``EnclaveError`` `invalidConfiguration` for a missing or unknown key, a value of the wrong type or out
    ///   of range, or text that is not a JSON object.
    public init(jsonBytes: some Collection<UInt8>) throws(EnclaveError) {
        let raw: RawConfig
        do {
            raw = try JSONDecoder().decode(RawConfig.self, from: Data(jsonBytes))
        } catch let error as EnclaveError {
            throw error
        } catch DecodingError.typeMismatch(_, let context), DecodingError.dataCorrupted(let context) {
            let key = context.codingPath.last?.stringValue ?? "configuration"
            throw .invalidConfiguration("\(key) has the wrong type or value")
        } catch DecodingError.keyNotFound(let key, _) {
            throw .invalidConfiguration("\(key.stringValue) is required")
        } catch {
            throw .invalidConfiguration("configuration is not a valid JSON object")
        }
        var config = EnclaveConfig(productID: raw.productID, securityVersion: raw.securityVersion)
        if let debug = raw.debug { config.debug = debug }
        if let threads = raw.maxThreads { config.maxThreads = threads }
        switch raw.maxMemory {
        case .none: break
        case .bytes(let bytes): config.maxMemory = bytes
        case .text(let text): config.maxMemory = try Self.parseSize(text)
        }
        try config.validate()
        self = config
    }

    /// The JSON shape, decoded strictly (JSON booleans and numbers do not convert into each other).
    private struct RawConfig: Decodable {
        enum Size { case bytes(UInt64), text(String) }
        var productID: UInt16
        var securityVersion: UInt16
        var debug: Bool?
        var maxThreads: UInt32?
        var maxMemory: Size?

        private struct AnyKey: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init?(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        private enum Keys: String, CodingKey, CaseIterable {
            case productID, securityVersion, debug, maxThreads, maxMemory
        }

        init(from decoder: any Decoder) throws {
            let all = try decoder.container(keyedBy: AnyKey.self)
            if let unknown = all.allKeys.map(\.stringValue).sorted().first(where: { Keys(rawValue: $0) == nil }) {
                throw EnclaveError.invalidConfiguration("unknown configuration key \"\(unknown)\"")
            }
            let container = try decoder.container(keyedBy: Keys.self)
            productID = try container.decode(UInt16.self, forKey: .productID)
            securityVersion = try container.decode(UInt16.self, forKey: .securityVersion)
            debug = try container.decodeIfPresent(Bool.self, forKey: .debug)
            maxThreads = try container.decodeIfPresent(UInt32.self, forKey: .maxThreads)
            if container.contains(.maxMemory) {
                if let bytes = try? container.decode(UInt64.self, forKey: .maxMemory) {
                    maxMemory = .bytes(bytes)
                } else {
                    maxMemory = .text(try container.decode(String.self, forKey: .maxMemory))
                }
            }
        }
    }

    /// Parse "512MiB", "1GiB", "65536KiB" or a plain byte count.
    static func parseSize(_ text: String) throws(EnclaveError) -> UInt64 {
        let units: [(String, UInt64)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1)]
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            let digits = trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
            guard let value = UInt64(digits) else { break }
            let (product, overflow) = value.multipliedReportingOverflow(by: scale)
            guard !overflow else { break }
            return product
        }
        if let value = UInt64(trimmed) { return value }
        throw .invalidConfiguration("maxMemory \"\(text)\" is not a size such as 512MiB")
    }
}
