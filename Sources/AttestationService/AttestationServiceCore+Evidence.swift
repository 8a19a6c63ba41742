internal import Attestation
internal import AttestationAPI
internal import EnclaveCore
internal import Foundation
internal import X509

extension AttestationServiceCore {
    /// The verified claims of `evidence` for `type`, or a ``ServiceError`` naming the failed check: the request's
    /// document read as ``Attestation/Evidence`` for its route and verified by ``Attestation/EvidenceVerifier`` (the
    /// CLI's verifier), its failure mapped once (``ServiceError/init(_:)``).
    func verifyEvidence(type: AttestationType, evidence bytes: [UInt8], at time: Date) async throws -> Claims {
        do {
            let evidence = try Evidence(serviceDocument: bytes, route: type.rawValue)
            return try await evidenceVerifier(for: type).claims(evidence, at: time)
        } catch {
            throw ServiceError(error)
        }
    }

    /// The verifier for `type`'s route: simulated evidence to the simulated root (when allowed) with the simulated
    /// platform's collateral or chain-only; real evidence to Intel's and AMD's roots with collateral from the static
    /// map or the PCCS, chain-only only on the operator's word.
    func evidenceVerifier(for type: AttestationType) throws(AttestationError) -> EvidenceVerifier {
        if type == .simulatedEnclave {
            guard configuration.allowSimulated, let anchor = configuration.simulatedAnchor else {
                throw AttestationError(
                    .simulatedNotAllowed,
                    "this service does not accept simulated evidence (start it with --allow-simulated)"
                )
            }
            let simulatedCollateral = configuration.simulatedCollateral
            return EvidenceVerifier(
                anchors: .init(intel: [.init(certificate: anchor, simulated: true)]),
                collateral: .init(allowsChainOnly: true) { _, time throws(AttestationError) in
                    do { return try simulatedCollateral?(time) } catch { throw AttestationError(error) }
                },
                cache: verificationCache
            )
        }
        let logger = logger
        return EvidenceVerifier(
            anchors: .init(intel: configuration.intelAnchors.map { .init(certificate: $0, simulated: false) }),
            collateral: .init(
                allowsChainOnly: configuration.allowChainOnly,
                onChainOnly: { missing in
                    logger.warning(
                        "no collateral: chain-only verification (operator opt-in)",
                        metadata: ["code": "\(missing.serviceErrorCode)", "reason": "\(missing.message)"]
                    )
                }
            ) { quote, time throws(AttestationError) in
                do {
                    return try await self.collateralForQuote(quote, at: time)
                } catch let error as ServiceError {
                    throw AttestationError(error)
                } catch {
                    throw AttestationError(error)
                }
            },
            cache: verificationCache
        )
    }
}
