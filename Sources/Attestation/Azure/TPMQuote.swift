internal import Crypto
public import EnclaveCore
internal import Foundation
internal import _CryptoExtras

/// A TPM 2.0 quote (`TPMS_ATTEST` of type `TPM_ST_ATTEST_QUOTE`) with its RSA signature and the PCR values it
/// covers, as Azure confidential VMs' vTPMs produce them. The quote's `extraData` is the verifier's nonce; its PCR
/// digest must equal the hash of the selected PCR values.
public struct TPMQuote: Sendable {
    /// The signed `TPMS_ATTEST` bytes.
    public let message: [UInt8]
    /// The RSA signature (PKCS #1 v1.5, SHA-256) over ``message``.
    public let signature: [UInt8]
    /// PCR values by index (SHA-256 bank; 24 PCRs).
    public let pcrs: [[UInt8]]
    /// `extraData`: the nonce the quote was made for.
    public let nonce: [UInt8]
    /// The selected PCR indices of the SHA-256 bank, ascending.
    public let selectedPCRs: [Int]
    /// The digest of the selected PCRs the TPM signed.
    public let pcrDigest: [UInt8]

    /// A check of ``verify(attestationKey:)``.
    public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        /// What did not verify (signature, nonce or PCR digest), for people.
        public var reason: String
        public var description: String { "TPM quote: \(reason)" }
    }

    static let magic: UInt32 = 0xFF54_4347
    static let quoteType: UInt16 = 0x8018
    static let sha256: UInt16 = 0x000B

    /// Parse the quote. Big-endian TPM structures; every length bounded; nothing may follow.
    /// - Throws: `EnclaveError` — `limitExceeded` when a part is larger than its structure allows, `malformedInput`
    ///   when it does not parse.
    public init(message: [UInt8], signature: [UInt8], pcrs: [[UInt8]]) throws(EnclaveError) {
        guard message.count <= 4096, signature.count <= 1024, pcrs.count <= 32 else {
            throw .limitExceeded("TPM quote larger than its structures allow")
        }
        var position = 0
        func take(_ count: Int, _ what: String) throws(EnclaveError) -> ArraySlice<UInt8> {
            guard count >= 0, message.count - position >= count else {
                throw .malformedInput("TPM quote: truncated \(what)")
            }
            defer { position += count }
            return message[position..<position + count]
        }
        func integer(_ width: Int, _ what: String) throws(EnclaveError) -> UInt64 {
            try take(width, what).reduce(0) { $0 << 8 | UInt64($1) }
        }
        guard try integer(4, "magic") == UInt64(Self.magic) else { throw .malformedInput("TPM quote: bad magic") }
        guard try integer(2, "type") == UInt64(Self.quoteType) else { throw .malformedInput("TPM quote: not a quote") }
        _ = try take(Int(try integer(2, "signer length")), "qualified signer")
        let extra = Array(try take(Int(try integer(2, "extra data length")), "extra data"))
        guard extra.count <= 64 else { throw .malformedInput("TPM quote: extra data over 64 bytes") }
        _ = try take(17 + 8, "clock info and firmware version")
        let banks = Int(try integer(4, "PCR selection count"))
        guard banks <= 16 else { throw .malformedInput("TPM quote: too many PCR banks") }
        var selected: [Int] = []
        for _ in 0..<banks {
            let algorithm = UInt16(try integer(2, "hash algorithm"))
            let size = Int(try integer(1, "selection size"))
            guard size <= 4 else { throw .malformedInput("TPM quote: PCR selection over 4 bytes") }
            let mask = try take(size, "PCR selection")
            guard algorithm == Self.sha256 else {
                guard mask.allSatisfy({ $0 == 0 }) else {
                    throw .malformedInput("TPM quote: selects PCRs of a bank other than SHA-256")
                }
                continue
            }
            for (byteIndex, byte) in mask.enumerated() {
                for bit in 0..<8 where byte & (1 << bit) != 0 { selected.append(byteIndex * 8 + bit) }
            }
        }
        let digest = Array(try take(Int(try integer(2, "PCR digest length")), "PCR digest"))
        guard position == message.count else { throw .malformedInput("TPM quote: trailing bytes") }
        guard selected.allSatisfy({ $0 < pcrs.count }), pcrs.allSatisfy({ $0.count == 32 }) else {
            throw .malformedInput("TPM quote: the PCR values do not cover the selection")
        }
        self.message = message
        self.signature = signature
        self.pcrs = pcrs
        self.nonce = extra
        self.selectedPCRs = selected.sorted()
        self.pcrDigest = digest
    }

    /// Verify the signature under the vTPM attestation key (an RSA JWK: `n`, `e` in base64url) and that the signed
    /// PCR digest is the hash of the selected PCR values.
    /// - Throws: ``Failure`` when the key is not RSA of at least 2048 bits, the signature does not verify, or the PCR
    ///   values do not hash to the signed digest.
    public func verify(attestationKey jwk: [String: String]) throws(Failure) {
        guard let n = jwk["n"].flatMap(Base64URL.decode), let e = jwk["e"].flatMap(Base64URL.decode),
            let key = try? _RSA.Signing.PublicKey(n: n, e: e)
        else {
            throw Failure(reason: "the attestation key is not an RSA key of 2048 bits or more")
        }
        SignatureCounter.record(1)
        guard
            key.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature),
                for: SHA256.hash(data: message),
                padding: .insecurePKCS1v1_5
            )
        else {
            throw Failure(reason: "the quote is not signed by the attestation key")
        }
        var hash = SHA256()
        for index in selectedPCRs { hash.update(data: pcrs[index]) }
        guard Array(hash.finalize()) == pcrDigest else {
            throw Failure(reason: "the PCR values do not match the signed PCR digest")
        }
    }
}
