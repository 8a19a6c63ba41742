internal import Attestation
internal import AttestationAPI
internal import EnclaveCore

/// MAA's claim names for verified evidence: what goes into the token and what the policy sees.
enum EvidenceClaims {
    /// The token claims of `claims` (hex for byte strings, as MAA prints them).
    static func tokenClaims(_ claims: Claims, type: AttestationType) -> [String: TokenValue] {
        var out: [String: TokenValue] = [
            "x-ms-attestation-type": .string(type.claimValue),
            "x-enclavekit-simulated": .bool(claims.simulated),
        ]
        if let status = claims.tcbStatus {
            out["x-enclavekit-tcb-status"] = .string(status.rawValue)
            out["attester_tcb_status"] = .string(status.rawValue)
        }
        if !claims.advisoryIDs.isEmpty {
            out["x-enclavekit-advisory-ids"] = .array(claims.advisoryIDs.map(TokenValue.string))
        }
        if let sgx = claims.sgx {
            out["x-ms-sgx-is-debuggable"] = .bool(claims.debug)
            out["x-ms-sgx-mrenclave"] = .string(sgx.mrEnclave.hex)
            out["x-ms-sgx-mrsigner"] = .string(sgx.mrSigner.hex)
            out["x-ms-sgx-product-id"] = .integer(Int(sgx.isvProductID))
            out["x-ms-sgx-svn"] = .integer(Int(sgx.isvSVN))
            out["x-ms-sgx-config-id"] = .string(Hex.encode(sgx.configID))
            out["x-ms-sgx-config-svn"] = .integer(Int(sgx.configSVN))
            out["x-ms-sgx-isv-extended-product-id"] = .string(Hex.encode(sgx.isvExtendedProductID))
            out["x-ms-sgx-isv-family-id"] = .string(Hex.encode(sgx.isvFamilyID))
            out["x-ms-sgx-report-data"] = .string(Hex.encode(claims.reportData))
        }
        if let tdx = claims.tdx {
            out["tdx_mrtd"] = .string(Hex.encode(tdx.mrTD))
            for (index, rtmr) in tdx.rtmrs.enumerated() { out["tdx_rtmr\(index)"] = .string(Hex.encode(rtmr)) }
            out["tdx_mrseam"] = .string(Hex.encode(tdx.mrSeam))
            out["tdx_mrsignerseam"] = .string(Hex.encode(tdx.mrSignerSeam))
            out["tdx_mrowner"] = .string(Hex.encode(tdx.mrOwner))
            out["tdx_mrconfigid"] = .string(Hex.encode(tdx.mrConfigID))
            out["tdx_mrownerconfig"] = .string(Hex.encode(tdx.mrOwnerConfig))
            out["tdx_td_attributes_debug"] = .bool(claims.debug)
            out["tdx_td_attributes_septve_disable"] = .bool(tdx.septVEDisable)
            out["tdx_td_attributes"] = .string(String(tdx.tdAttributes, radix: 16))
            out["tdx_xfam"] = .string(String(tdx.xfam, radix: 16))
            out["tdx_tee_tcb_svn"] = .string(Hex.encode(tdx.teeTCBSVN))
            out["tdx_report_data"] = .string(Hex.encode(claims.reportData))
            if let service = tdx.mrServiceTD { out["tdx_mrservicetd"] = .string(Hex.encode(service)) }
        }
        if let snp = claims.sevSNP {
            out["x-ms-sevsnpvm-is-debuggable"] = .bool(snp.policy.debugAllowed)
            out["x-ms-sevsnpvm-launchmeasurement"] = .string(Hex.encode(snp.measurement))
            out["x-ms-sevsnpvm-hostdata"] = .string(Hex.encode(snp.hostData))
            out["x-ms-sevsnpvm-familyId"] = .string(Hex.encode(snp.familyID))
            out["x-ms-sevsnpvm-imageId"] = .string(Hex.encode(snp.imageID))
            out["x-ms-sevsnpvm-guestsvn"] = .integer(Int(snp.guestSVN))
            out["x-ms-sevsnpvm-vmpl"] = .integer(Int(snp.vmpl))
            out["x-ms-sevsnpvm-migration-allowed"] = .bool(snp.policy.migrationAgentAllowed)
            out["x-ms-sevsnpvm-smt-allowed"] = .bool(snp.policy.smtAllowed)
            out["x-ms-sevsnpvm-guestpolicy"] = .integer(Int(truncatingIfNeeded: snp.policy.rawValue))
            out["x-ms-sevsnpvm-idkeydigest"] = .string(Hex.encode(snp.idKeyDigest))
            out["x-ms-sevsnpvm-authorkeydigest"] = .string(Hex.encode(snp.authorKeyDigest))
            out["x-ms-sevsnpvm-reportid"] = .string(Hex.encode(snp.reportID))
            out["x-ms-sevsnpvm-reportdata"] = .string(Hex.encode(claims.reportData))
            out["x-ms-sevsnpvm-bootloader-svn"] = .integer(Int(snp.reportedTCB.bootloader))
            out["x-ms-sevsnpvm-tee-svn"] = .integer(Int(snp.reportedTCB.tee))
            out["x-ms-sevsnpvm-snpfw-svn"] = .integer(Int(snp.reportedTCB.snp))
            out["x-ms-sevsnpvm-microcode-svn"] = .integer(Int(snp.reportedTCB.microcode))
            out["x-ms-sevsnpvm-product"] = .string(snp.certifiedProduct ?? snp.productName)
            out["x-ms-sevsnpvm-signing-key"] = .string(snp.signingKey)
        }
        if let tpm = claims.tpm {
            // The guest's own measurements, which the paravisor's hardware report does not name: the vTPM's PCRs
            // (SHA-256 bank) and the nonce its quote was made for, both signed by the key the report binds.
            out["x-ms-azurevm-attested-pcrs"] = .array(tpm.pcrs.indices.map { .integer($0) })
            for (index, pcr) in tpm.pcrs.enumerated() { out["x-enclavekit-tpm-pcr\(index)"] = .string(Hex.encode(pcr)) }
            out["x-enclavekit-tpm-nonce"] = .string(Hex.encode(tpm.nonce))
        }
        return out
    }

    /// The claims a policy sees: every scalar token claim (issuer AttestationService), and MAA's short names for
    /// SGX (`$is-debuggable`, `$product-id`, `$svn`, `$sgx-mrsigner`, `$sgx-mrenclave`).
    static func policyClaims(_ token: [String: TokenValue]) -> [PolicyClaim] {
        var claims: [PolicyClaim] = []
        for (type, value) in token.sorted(by: { $0.key < $1.key }) {
            guard let scalar = scalar(value) else { continue }
            claims.append(PolicyClaim(type: type, value: scalar))
        }
        let aliases = [
            "x-ms-sgx-is-debuggable": "$is-debuggable", "x-ms-sgx-product-id": "$product-id", "x-ms-sgx-svn": "$svn",
            "x-ms-sgx-mrsigner": "$sgx-mrsigner", "x-ms-sgx-mrenclave": "$sgx-mrenclave",
        ]
        for (name, alias) in aliases.sorted(by: { $0.key < $1.key }) {
            if let value = token[name].flatMap(scalar) { claims.append(PolicyClaim(type: alias, value: value)) }
        }
        return claims
    }

    static func scalar(_ value: TokenValue) -> PolicyClaim.Value? {
        switch value {
        case .string(let text): .string(text)
        case .integer(let number): .integer(number)
        case .bool(let flag): .bool(flag)
        default: nil
        }
    }
}
