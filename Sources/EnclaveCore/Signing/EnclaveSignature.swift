public import Crypto

/// The signature structure written beside an enclave image as `IMAGE.sig`, in the spirit of SGX's SIGSTRUCT.
///
/// It holds the signed ``Body`` (measurement, identity, configuration and the manifest of trusted files), the
/// signer's public key and an ECDSA P-256/SHA-256 signature over the body's exact bytes. The signer ID is
/// SHA-256 of the DER public key.
///
/// Layout (little-endian): body (starts with the magic `EKSIGST1`), then `u16` key length + DER
/// SubjectPublicKeyInfo, then `u16` signature length + DER ECDSA signature, then nothing.
public struct EnclaveSignature: Hashable, Sendable {
    /// The signed part.
    public struct Body: Hashable, Sendable {
        /// The format version this code writes and accepts.
        public static let formatVersion: UInt16 = 1
        static let magic: [UInt8] = Array("EKSIGST1".utf8)

        /// The measured content and layout.
        public var manifest: EnclaveManifest
        /// Product ID.
        public var productID: UInt16
        /// Security version.
        public var securityVersion: UInt16
        /// Attributes (debug).
        public var attributes: EnclaveIdentity.Attributes

        /// Create a body from a manifest and configuration.
        public init(manifest: EnclaveManifest, config: EnclaveConfig) {
            self.manifest = manifest
            self.productID = config.productID
            self.securityVersion = config.securityVersion
            self.attributes = config.debug ? [.debug] : []
        }

        /// The measurement the body commits to.
        public var uniqueID: Digest32 { manifest.uniqueID }

        /// The configuration the body commits to.
        public var config: EnclaveConfig {
            EnclaveConfig(
                productID: productID,
                securityVersion: securityVersion,
                debug: attributes.contains(.debug),
                maxThreads: manifest.maxThreads,
                maxMemory: manifest.maxMemory
            )
        }

        /// The exact bytes that are signed (what `enclave sign --digest-out` writes).
        public var bytes: [UInt8] {
            var writer = ByteWriter()
            writer.append(Self.magic)
            writer.integer(Self.formatVersion)
            writer.append(manifest.uniqueID.bytes)
            writer.integer(productID)
            writer.integer(securityVersion)
            writer.integer(attributes.rawValue)
            writer.integer(manifest.maxThreads)
            writer.integer(manifest.maxMemory)
            writer.append(manifest.imageDigest.bytes)
            writer.integer(UInt16(manifest.trustedFiles.count))
            for file in manifest.trustedFiles {
                writer.integer(UInt16(file.path.utf8.count))
                writer.append(file.path.utf8)
                writer.append(file.digest.bytes)
            }
            return writer.bytes
        }

        /// Parse a body, checking its magic, version, attributes, limits and that the stated uniqueID is the one
        /// its manifest yields.
        static func parse(_ reader: inout ByteReader) throws(EnclaveError) -> Body {
            guard Array(try reader.take(8, "magic")) == magic else {
                throw .invalidSignature("not an EnclaveKit signature structure (bad magic)")
            }
            let version = try reader.integer(UInt16.self, "format version")
            guard version == formatVersion else {
                throw .invalidSignature("unsupported signature structure version \(version)")
            }
            let statedUniqueID = try reader.digest("uniqueID")
            let productID = try reader.integer(UInt16.self, "productID")
            let securityVersion = try reader.integer(UInt16.self, "securityVersion")
            let attributes = EnclaveIdentity.Attributes(rawValue: try reader.integer(UInt64.self, "attributes"))
            guard EnclaveIdentity.Attributes.known.isSuperset(of: attributes) else {
                throw .invalidSignature("unknown attribute bits 0x\(String(attributes.rawValue, radix: 16))")
            }
            let maxThreads = try reader.integer(UInt32.self, "maxThreads")
            let maxMemory = try reader.integer(UInt64.self, "maxMemory")
            let imageDigest = try reader.digest("image digest")
            let count = Int(try reader.integer(UInt16.self, "trusted file count"))
            guard count <= EnclaveManifest.maxTrustedFiles else {
                throw .limitExceeded("\(count) trusted files, over the \(EnclaveManifest.maxTrustedFiles) limit")
            }
            var files: [EnclaveManifest.TrustedFile] = []
            for _ in 0..<count {
                let length = Int(try reader.integer(UInt16.self, "path length"))
                guard length > 0, length <= EnclaveManifest.maxPathLength else {
                    throw .malformedInput("trusted file path length \(length) out of range")
                }
                guard let path = String(validating: try reader.take(length, "path"), as: UTF8.self),
                    path.hasPrefix("/")
                else {
                    throw .malformedInput("trusted file path is not an absolute UTF-8 path")
                }
                files.append(.init(path: path, digest: try reader.digest("trusted file digest")))
            }
            guard zip(files, files.dropFirst()).allSatisfy({ $0.path < $1.path }) else {
                throw .malformedInput("trusted files are not sorted and unique")
            }
            let manifest = EnclaveManifest(
                imageDigest: imageDigest,
                trustedFiles: files,
                maxThreads: maxThreads,
                maxMemory: maxMemory
            )
            let body = Body(
                manifest: manifest,
                config: EnclaveConfig(
                    productID: productID,
                    securityVersion: securityVersion,
                    debug: attributes.contains(.debug),
                    maxThreads: maxThreads,
                    maxMemory: maxMemory
                )
            )
            do {
                try body.config.validate()
            } catch {
                throw .invalidSignature("signed configuration is invalid: \(error.reason)")
            }
            guard manifest.uniqueID == statedUniqueID else {
                throw .invalidSignature("stated uniqueID does not match the signed manifest")
            }
            return body
        }
    }

    /// The signed body.
    public let body: Body
    /// DER SubjectPublicKeyInfo of the signer's P-256 key.
    public let publicKeyDER: [UInt8]
    /// DER ECDSA signature over ``Body/bytes``.
    public let signatureDER: [UInt8]

    /// The signer ID: SHA-256 of ``publicKeyDER``.
    public var signerID: Digest32 {
        try! Digest32(bytes: SHA256.hash(data: publicKeyDER))  // swift-format-ignore: NeverUseForceTry
    }

    /// The identity this structure vouches for.
    public var identity: EnclaveIdentity {
        EnclaveIdentity(
            uniqueID: body.uniqueID,
            signerID: signerID,
            productID: body.productID,
            securityVersion: body.securityVersion,
            attributes: body.attributes
        )
    }

    /// Sign `body` with `key`.
    /// - Throws: An error from swift-crypto when the key cannot sign.
    public init(signing body: Body, with key: P256.Signing.PrivateKey) throws {
        let signature = try key.signature(for: body.bytes)
        self.body = body
        self.publicKeyDER = Array(key.publicKey.derRepresentation)
        self.signatureDER = Array(signature.derRepresentation)
    }

    /// Attach a signature made elsewhere (for example by an HSM) over `body.bytes`.
    /// - Parameters:
    ///   - body: The body that was signed: the bytes `enclave sign --digest-out` wrote.
    ///   - publicKey: The signer's public key; its SHA-256 becomes the enclave's `signerID`.
    ///   - signature: DER, or raw 64-byte `r‖s`.
    /// - Throws: ``EnclaveError`` `invalidSignature` when the signature does not verify under `publicKey`.
    public init(body: Body, publicKey: P256.Signing.PublicKey, signature: [UInt8]) throws(EnclaveError) {
        let parsed: P256.Signing.ECDSASignature
        if let der = try? P256.Signing.ECDSASignature(derRepresentation: signature) {
            parsed = der
        } else if signature.count == 64, let raw = try? P256.Signing.ECDSASignature(rawRepresentation: signature) {
            parsed = raw
        } else {
            throw .invalidSignature("signature is neither DER nor 64-byte raw ECDSA")
        }
        guard publicKey.isValidSignature(parsed, for: body.bytes) else {
            throw .invalidSignature("signature does not verify under the given public key")
        }
        self.body = body
        self.publicKeyDER = Array(publicKey.derRepresentation)
        self.signatureDER = Array(parsed.derRepresentation)
    }

    /// Parse and verify a signature structure: strict layout, no trailing bytes, a canonical P-256 key, and a
    /// signature that verifies over the body's exact bytes.
    /// - Throws: ``EnclaveError`` — `invalidSignature` for a bad magic, version, attributes, key or signature, or a
    ///   stated uniqueID that the manifest does not yield; `malformedInput` or `limitExceeded` for a malformed or
    ///   oversized structure.
    public init(bytes: [UInt8]) throws(EnclaveError) {
        guard bytes.count <= 4 << 20 else { throw .limitExceeded("signature structure larger than 4 MiB") }
        var reader = ByteReader(bytes)
        let body = try Body.parse(&reader)
        let bodyEnd = reader.position
        let keyLength = Int(try reader.integer(UInt16.self, "public key length"))
        let keyBytes = Array(try reader.take(keyLength, "public key"))
        let signatureLength = Int(try reader.integer(UInt16.self, "signature length"))
        let signatureBytes = Array(try reader.take(signatureLength, "signature"))
        try reader.expectEnd("signature structure")

        let key: P256.Signing.PublicKey
        do {
            key = try P256.Signing.PublicKey(derRepresentation: keyBytes)
        } catch {
            throw .invalidSignature("signer public key is not a DER P-256 key")
        }
        guard Array(key.derRepresentation) == keyBytes else {
            throw .invalidSignature("signer public key is not canonically encoded")
        }
        guard let signature = try? P256.Signing.ECDSASignature(derRepresentation: signatureBytes),
            Array(signature.derRepresentation) == signatureBytes
        else {
            throw .invalidSignature("signature is not a canonical DER ECDSA signature")
        }
        // Verify over the original bytes, not a re-serialisation.
        guard key.isValidSignature(signature, for: bytes[0..<bodyEnd]) else {
            throw .invalidSignature("signature does not verify")
        }
        self.body = body
        self.publicKeyDER = keyBytes
        self.signatureDER = signatureBytes
    }

    /// The serialised structure.
    public var bytes: [UInt8] {
        var writer = ByteWriter()
        writer.append(body.bytes)
        writer.integer(UInt16(publicKeyDER.count))
        writer.append(publicKeyDER)
        writer.integer(UInt16(signatureDER.count))
        writer.append(signatureDER)
        return writer.bytes
    }
}
