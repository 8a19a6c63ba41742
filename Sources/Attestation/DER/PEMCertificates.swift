internal import Foundation
internal import X509

/// PEM certificate chains as DCAP quotes and collateral carry them, decoded with Foundation's base64 (a quote's
/// chain is decoded on every full verification; swift-asn1's PEM reader was a tenth of its time). Only
/// `CERTIFICATE` blocks; only whitespace between and around them; nothing else.
enum PEMCertificates {
    static let begin = Array("-----BEGIN CERTIFICATE-----".utf8)
    static let end = Array("-----END CERTIFICATE-----".utf8)

    /// The DER encodings of the chain's certificates, in order.
    static func derBlocks(_ text: some Collection<UInt8>) throws -> [[UInt8]] {
        let bytes = Array(text)
        return try bytes.withUnsafeBufferPointer { bytes in
            var blocks: [[UInt8]] = []
            var position = 0
            func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 }
            func matches(_ marker: [UInt8], at index: Int) -> Bool {
                index + marker.count <= bytes.count && bytes[index..<index + marker.count].elementsEqual(marker)
            }
            while position < bytes.count {
                if isSpace(bytes[position]) {
                    position += 1
                    continue
                }
                guard matches(begin, at: position) else { throw PEMError.unexpectedText }
                position += begin.count
                // The body without its whitespace, written into a buffer of the rest's size. The end line is looked
                // for only at a dash (base64 has none): one comparison per byte, not a slice.
                var found = false
                let body = [UInt8](unsafeUninitializedCapacity: bytes.count - position) { out, written in
                    var count = 0
                    while position < bytes.count {
                        let byte = bytes[position]
                        if byte == UInt8(ascii: "-") {
                            if matches(end, at: position) {
                                found = true
                                break
                            }
                        }
                        if !isSpace(byte) {
                            out[count] = byte
                            count += 1
                        }
                        position += 1
                    }
                    written = count
                }
                guard found else { throw PEMError.unterminated }
                position += end.count
                guard let der = Data(base64Encoded: Data(body)), !der.isEmpty else { throw PEMError.badBase64 }
                blocks.append([UInt8](der))
            }
            guard !blocks.isEmpty else { throw PEMError.empty }
            return blocks
        }
    }

    /// The chain's certificates, in order.
    static func parse(_ text: some Collection<UInt8>) throws -> [Certificate] {
        var known = KnownCertificates.intelRoot
        return try parse(text, reusing: &known)
    }

    /// The chain's certificates, in order; a block whose DER bytes equal those of a certificate in `known` is that
    /// certificate (parsing is a function of the bytes alone), any other is parsed and added to `known`. Blocks from
    /// index `sharedFrom` on are parsed through the process's ``CertificateCache`` (issuing certificates: the same few
    /// for every platform); those before it (a quote's own PCK certificate) are always parsed.
    static func parse(
        _ text: some Collection<UInt8>,
        reusing known: inout KnownCertificates,
        sharedFrom: Int = 0
    ) throws -> [Certificate] {
        var certificates: [Certificate] = []
        for (index, der) in try derBlocks(text).enumerated() {
            if let certificate = known[der] {
                certificates.append(certificate)
                continue
            }
            let certificate =
                index >= sharedFrom
                ? try CertificateCache.shared.certificate(der: der) : try Certificate(derEncoded: der)
            known.add(der: der, certificate)
            certificates.append(certificate)
        }
        return certificates
    }

    enum PEMError: Error, CustomStringConvertible {
        case unexpectedText, unterminated, badBase64, empty
        var description: String {
            switch self {
            case .unexpectedText: "text outside the PEM certificate blocks"
            case .unterminated: "a PEM certificate block has no end line"
            case .badBase64: "a PEM certificate block is not base64"
            case .empty: "no PEM certificate"
            }
        }
    }
}
