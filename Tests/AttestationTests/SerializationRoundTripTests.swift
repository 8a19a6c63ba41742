import EnclaveCore
import Foundation
import Testing

@testable import Attestation

/// The writers beside the readers: real quotes and report bodies from Tests/Vectors, parsed and serialized again,
/// give back their exact bytes, and a value's fields are all its bytes say.
@Suite("Serialization round trips")
struct SerializationRoundTripTests {
    /// Real SGX v3 and TDX v4/v5 quotes: parse → serialize → the same bytes (padding excluded, as parsed), built
    /// again from their parts too.
    @Test(arguments: Vectors.quotes + Vectors.tdxQuotes)
    func realQuotesSerializeToTheirBytes(_ path: String) throws {
        let file = try Vectors.bytes(path)
        let quote = try DCAPQuote(bytes: file)
        #expect(quote.serialized() == quote.bytes)
        #expect(Array(file.prefix(quote.bytes.count)) == quote.bytes)
        #expect(file.dropFirst(quote.bytes.count).allSatisfy { $0 == 0 })
        let rebuilt = DCAPQuote.serialize(
            header: quote.header,
            body: quote.body,
            signature: quote.signature,
            attestationKey: quote.attestationKey,
            qeReport: quote.qeReport,
            qeReportSignature: quote.qeReportSignature,
            qeAuthenticationData: quote.qeAuthenticationData,
            certification: quote.certification
        )
        #expect(rebuilt == quote.bytes)
        #expect(Array(DCAPQuote.signedBytes(header: quote.header, body: quote.body)) == Array(quote.signedBytes))
        #expect(try DCAPQuote(bytes: rebuilt) == quote)
    }

    /// Report bodies (each quote's QE report, the SGX enclave reports, the TD reports): parse → serialize → the
    /// same bytes, and the field-wise initializer writes the same bytes as well.
    @Test(arguments: Vectors.quotes + Vectors.tdxQuotes)
    func realReportBodiesSerializeToTheirBytes(_ path: String) throws {
        let quote = try DCAPQuote(bytes: Vectors.bytes(path))
        var reports = [quote.qeReport]
        if let sgx = quote.sgxReport { reports.append(sgx) }
        for report in reports {
            #expect(report.serialized() == report.bytes)
            let built = try SGXReportBody(
                cpuSVN: report.cpuSVN,
                miscSelect: report.miscSelect,
                isvExtendedProductID: report.isvExtendedProductID,
                attributes: report.attributes,
                mrEnclave: report.mrEnclave,
                mrSigner: report.mrSigner,
                configID: report.configID,
                isvProductID: report.isvProductID,
                isvSVN: report.isvSVN,
                configSVN: report.configSVN,
                isvFamilyID: report.isvFamilyID,
                reportData: report.reportData,
                reserved: report.reserved
            )
            #expect(built == report)
        }
        if let td = quote.tdReport {
            #expect(td.serialized() == td.bytes)
            #expect(try TDReport(bytes: td.serialized()) == td)
        }
    }

    /// A value cannot carry bytes its fields do not show: bytes in the reserved regions after MRENCLAVE, MRSIGNER
    /// and CONFIGSVN (skipped unread before, so two different byte strings parsed to equal values) are kept in
    /// `reserved` and written back; the reserved bytes after MISCSELECT must be zero.
    @Test(arguments: [96, 127, 160, 191, 262, 303])
    func reservedReportBytesAreKept(_ offset: Int) throws {
        let quote = try DCAPQuote(bytes: Vectors.bytes(Vectors.quotes[0]))
        var bytes = quote.qeReport.bytes
        bytes[offset] = 1
        let report = try SGXReportBody(bytes: bytes)
        #expect(report != quote.qeReport)
        #expect(report.reserved.filter { $0 != 0 } == [1])
        #expect(report.serialized() == bytes)
    }

    @Test(arguments: [20, 31])
    func nonZeroBytesAfterMiscSelectAreRefused(_ offset: Int) throws {
        var bytes = try DCAPQuote(bytes: Vectors.bytes(Vectors.quotes[0])).qeReport.bytes
        bytes[offset] = 1
        #expect(throws: EnclaveError.malformedInput("reserved bytes of the report body are not zero")) {
            try SGXReportBody(bytes: bytes)
        }
    }

    /// The field-wise initializer checks every length.
    @Test func reportBodyFieldsHaveTheirLengths() throws {
        let digest = try Digest32(bytes: [UInt8](repeating: 1, count: 32))
        #expect(throws: EnclaveError.malformedInput("REPORTDATA is 64 bytes, got 63")) {
            try SGXReportBody(
                cpuSVN: [UInt8](repeating: 0, count: 16),
                attributes: SGXReportBody.attributes(flags: 5, xfrm: 3),
                mrEnclave: digest,
                mrSigner: digest,
                isvProductID: 1,
                isvSVN: 1,
                reportData: [UInt8](repeating: 0, count: 63)
            )
        }
    }

    /// Intel's SGX TCB info and QE identities (SGX QE and TDX TD_QE) in the vectors: parse → `jsonBytes()` → the
    /// exact bytes PCS served, whose signature verifies.
    @Test(arguments: [
        "sgx/phala-dcap-qvl/sgx_quote_collateral.json", "tdx/phala-dcap-qvl/tdx_quote_collateral.json",
        "tdx/phala-dcap-qvl/tdx_quote_outdated_collateral.json",
    ])
    func intelsSignedDocumentsSerializeToTheirBytes(_ path: String) throws {
        let collateral = try Collateral(dcapQVLJSON: Vectors.bytes(path))
        let identity = try QEIdentity(jsonBytes: collateral.qeIdentityBytes)
        #expect(
            String(decoding: identity.jsonBytes(), as: UTF8.self)
                == String(decoding: collateral.qeIdentityBytes, as: UTF8.self)
        )
        let info = try TCBInfo(jsonBytes: collateral.tcbInfoBytes)
        if info.id == "SGX" {
            #expect(
                String(decoding: info.jsonBytes(), as: UTF8.self)
                    == String(decoding: collateral.tcbInfoBytes, as: UTF8.self)
            )
        }
        // TDX components carry category and type names that are not kept: the same values, not the same bytes.
        let again = try TCBInfo(jsonBytes: info.jsonBytes())
        #expect(Self.describe(again) == Self.describe(info))
        #expect(try TCBInfo(jsonBytes: again.jsonBytes()).jsonBytes() == info.jsonBytes())
    }

    /// Every field of TCB info, for comparing two values.
    static func describe(_ info: TCBInfo) -> String {
        var text = "\(info.id) \(info.version) \(info.issueDate) \(info.nextUpdate) \(info.fmspc) \(info.pceID) "
        text += "\(String(describing: info.tcbType)) \(String(describing: info.tcbEvaluationDataNumber))"
        for level in info.levels {
            text += " [\(level.sgxComponents) \(level.pceSVN) \(String(describing: level.tdxComponents)) "
            text += "\(level.tcbDate) \(level.status) \(level.advisoryIDs)]"
        }
        for module in [info.tdxModule].compactMap({ $0 }) + info.tdxModuleIdentities {
            text += " {\(module.id) \(module.mrSigner) \(module.attributes) \(module.attributesMask)"
            for level in module.levels {
                text += " \(level.isvSVN) \(String(describing: level.tcbDate)) \(level.status) \(level.advisoryIDs)"
            }
            text += "}"
        }
        return text
    }

    /// A document written from values parses back to them; strings are escaped.
    @Test func writtenQEIdentityParsesBackToItsValues() throws {
        let issued = Date(timeIntervalSince1970: 1_750_000_000)
        let identity = QEIdentity(
            issueDate: issued,
            nextUpdate: issued.addingTimeInterval(86400),
            tcbEvaluationDataNumber: 3,
            miscSelect: [0, 0, 0, 0],
            miscSelectMask: [0xFF, 0xFF, 0xFF, 0xFF],
            attributes: [UInt8](repeating: 0x11, count: 16),
            attributesMask: [UInt8](repeating: 0xFB, count: 16),
            mrSigner: [UInt8](repeating: 0x8C, count: 32),
            isvProductID: 1,
            levels: [
                QEIdentity.Level(isvSVN: 8, status: .upToDate, advisoryIDs: [], tcbDate: "2024-03-13T00:00:00Z"),
                QEIdentity.Level(isvSVN: 6, status: .outOfDate, advisoryIDs: ["SA-\"1\"\\"], tcbDate: nil),
            ]
        )
        let parsed = try QEIdentity(jsonBytes: identity.jsonBytes())
        #expect(parsed.issueDate == identity.issueDate && parsed.nextUpdate == identity.nextUpdate)
        #expect(parsed.tcbEvaluationDataNumber == 3 && parsed.mrSigner == identity.mrSigner)
        #expect(parsed.attributes == identity.attributes && parsed.attributesMask == identity.attributesMask)
        #expect(parsed.levels.map(\.advisoryIDs) == [[], ["SA-\"1\"\\"]])
        #expect(parsed.levels.map(\.tcbDate) == ["2024-03-13T00:00:00Z", nil])
        #expect(parsed.jsonBytes() == identity.jsonBytes())
    }
}
