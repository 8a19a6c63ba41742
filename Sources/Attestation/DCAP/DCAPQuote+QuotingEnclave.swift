extension DCAPQuote {
    /// The quoting enclave against Intel's identity for it (`QE` for SGX, `TD_QE` for TDX): signer, product,
    /// MISCSELECT and attributes under their masks, and the level its SVN reaches.
    func checkQuotingEnclave(_ identity: QEIdentity) throws -> QEIdentity.Level {
        let expectedID = isTDX ? "TD_QE" : "QE"
        guard identity.id == expectedID else {
            throw VerificationFailure(
                check: .qeIdentity,
                reason: "the QE identity is for \(identity.id), this quote needs \(expectedID)"
            )
        }
        // Intel's quoting enclave, whoever signed the identity: a QE identity naming another is not Intel's.
        let intel = QuotingEnclaveIdentity.intel(tdx: isTDX)
        guard identity.mrSigner == intel.mrSigner, identity.isvProductID == Int(intel.isvProductID) else {
            throw VerificationFailure(
                check: .qeIdentity,
                reason: "the QE identity does not name Intel's quoting enclave (\(intel.id))"
            )
        }
        try checkPinnedQuotingEnclave()
        let qe = qeReport
        guard qe.mrSigner.bytes == identity.mrSigner, Int(qe.isvProductID) == identity.isvProductID else {
            throw VerificationFailure(check: .qeIdentity, reason: "the quoting enclave is not the one Intel identifies")
        }
        let misc = withUnsafeBytes(of: qe.miscSelect.littleEndian, Array.init)
        guard zip(misc, identity.miscSelectMask).map({ $0 & $1 }) == identity.miscSelect,
            zip(qe.attributes, identity.attributesMask).map({ $0 & $1 }) == identity.attributes
        else {
            throw VerificationFailure(
                check: .qeIdentity,
                reason: "the quoting enclave's MISCSELECT or attributes differ"
            )
        }
        guard let level = identity.levels.first(where: { Int(qe.isvSVN) >= $0.isvSVN }) else {
            throw VerificationFailure(check: .qeIdentity, reason: "the quoting enclave's SVN is below every level")
        }
        return level
    }

    /// The quoting enclave pinned to Intel's (``QuotingEnclaveIdentity/intel(tdx:)``), with or without collateral.
    func checkPinnedQuotingEnclave() throws {
        let intel = QuotingEnclaveIdentity.intel(tdx: isTDX)
        if let mismatch = intel.mismatch(qeReport) {
            throw VerificationFailure(
                check: .qeIdentity,
                reason: "the quoting enclave is not Intel's \(intel.id): \(mismatch)"
            )
        }
    }
}
