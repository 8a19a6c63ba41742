internal import AttestationService
public import CleanRoom
public import EnclaveCore
internal import Foundation
internal import KeyReleaseFormats

/// How the clean room's host obtains a data owner's key for the attested clean room: the enclave's evidence and
/// runtime data go to the attestation service (``attest``), the token to the key broker (``release``), and the JWE
/// out of the broker's answer goes to the enclave. The host carries opaque bytes: it can read neither the token's
/// meaning for the broker nor the key (wrapped to the enclave's key).
///
/// Both closures throw `ServiceError` whose code names who refused and why (the CLI maps the attestation
/// service's and the broker's error codes, e.g. `PolicyNotSatisfied`, into it); anything else becomes
/// `KeyReleaseFailed`.
public struct CleanRoomKeyRelease: Sendable {
    /// Runtime data (JSON) and evidence → the attestation service's token.
    public typealias Attest = @Sendable (_ runtimeData: [UInt8], _ evidence: AttestationEvidence) async throws -> String
    /// Key name, version (nil: the current one) and token → the broker's release answer (a compact JWS).
    public typealias Release = @Sendable (_ name: String, _ version: String?, _ token: String) async throws -> String

    /// Gets a token for the enclave's evidence.
    public let attest: Attest
    /// Asks the broker to release a key with a token.
    public let release: Release

    /// A key release over these two steps.
    public init(attest: @escaping Attest, release: @escaping Release) {
        self.attest = attest
        self.release = release
    }

    /// The release policy (Key Vault's grammar) of a data owner's key under `contract`: tokens of `issuer` for an
    /// enclave of the contract's clean room signer and product (and build, `x-ms-sgx-mrenclave`, when the contract
    /// pins one), at least its minimum security version, not debuggable, whose runtime data names the contract (`x-ms-runtime.contract`: the clean room enclave puts the
    /// ID of the contract it opened under there, bound into its evidence). One byte changed in the contract changes
    /// its ID, so no key is released to a clean room opened under it.
    ///
    /// With `counterKey` (the key broker's signing key, raw P-256 `x ‖ y`, taken from its attested evidence) the
    /// runtime data must also name it as `x-ms-runtime.counterKey`: the clean room's rollback counter is then the
    /// broker's, not one the untrusted host answers itself (which could roll the privacy budget back at a restart).
    /// `nil` releases to a clean room whatever its counter, or with none: no rollback protection for the privacy
    /// budget. There is no default, so that choice is always written out.
    public static func releasePolicy(contract: Contract, issuer: String, counterKey: [UInt8]?) -> [UInt8] {
        let requirement = contract.enclave
        var conditions: [[String: Any]] = [
            ["claim": "x-ms-sgx-mrsigner", "equals": requirement.signerID.hex],
            ["claim": "x-ms-sgx-product-id", "equals": Int(requirement.productID)],
            ["claim": "x-ms-sgx-svn", "greaterOrEquals": Int(requirement.minSecurityVersion)],
            ["claim": "x-ms-sgx-is-debuggable", "equals": false],
            ["claim": "x-ms-runtime.contract", "equals": contract.id.hex],
        ]
        if let pinned = requirement.uniqueID {
            conditions.append(["claim": "x-ms-sgx-mrenclave", "equals": pinned.hex])
        }
        if let counterKey {
            // A key that is not 64 bytes matches no token: nothing is released rather than the check dropped.
            let valid = counterKey.count == 64
            let x = valid ? Base64URL.encode(counterKey.prefix(32)) : "(not a P-256 key)"
            let y = valid ? Base64URL.encode(counterKey.suffix(32)) : "(not a P-256 key)"
            conditions.append(["claim": "x-ms-runtime.counterKey.x", "equals": x])
            conditions.append(["claim": "x-ms-runtime.counterKey.y", "equals": y])
        }
        let policy: [String: Any] = [
            "version": "1.0.0",
            "anyOf": [["authority": issuer, "allOf": conditions]],
        ]
        let data = try? JSONSerialization.data(withJSONObject: policy, options: [.sortedKeys, .withoutEscapingSlashes])
        return Array(data ?? Data())
    }

    /// The largest release answer accepted (the JWE inside is at most 64 KiB).
    public static let maxAnswerBytes = 256 << 10

    /// The JWE (`ECDH-ES+A256KW`) in a release answer: `response.key.key.key_hsm` of the JWS payload. The host does
    /// not verify the broker's signature: it has nothing to pin it to that the enclave would trust, and the enclave
    /// accepts a key only if the owner's file opens with it (see docs/cleanroom.md).
    /// - Throws: `ServiceError` `BadReleaseAnswer` when the answer is not that shape.
    public static func wrappedKey(fromReleaseAnswer answer: String) throws -> String {
        func bad(_ why: String) -> ServiceError {
            ServiceError(status: .badGateway, code: "BadReleaseAnswer", message: "the key broker's answer \(why)")
        }
        guard answer.utf8.count <= maxAnswerBytes else { throw bad("is larger than \(maxAnswerBytes) bytes") }
        let parts = answer.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = Base64URL.decode(String(parts[1])) else {
            throw bad("is not a compact JWS")
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any],
            let response = object["response"] as? [String: Any],
            let key = response["key"] as? [String: Any],
            let inner = key["key"] as? [String: Any],
            let encoded = inner["key_hsm"] as? String
        else { throw bad("has no response.key.key.key_hsm") }
        let blob: KeyHSM
        do { blob = try KeyHSM(encoded: encoded) } catch { throw bad("has a key_hsm that does not parse: \(error)") }
        guard blob.header.enc == "ECDH-ES+A256KW", let jwe = blob.ciphertextBytes,
            let text = String(bytes: jwe, encoding: .utf8)
        else { throw bad("is not wrapped with ECDH-ES+A256KW to the clean room's key") }
        return text
    }
}
