import Foundation
import TestSupport
import X509

/// The vectors (TestSupport), under the name every file of this target uses.
typealias Vectors = TestSupport.Vectors

/// The vectors these tests use most (see Tests/Vectors/MANIFEST.md for provenance).
extension TestSupport.Vectors {
    /// Real SGX quotes.
    static let quotes = ["sgx/phala-dcap-qvl/sgx_quote", "sgx/trustee/occlum_quote.dat"]
    /// TDX quotes: v4 (TD 1.0) and v5 (TD 1.5), from several sources.
    static let tdxQuotes = [
        "tdx/phala-dcap-qvl/tdx_quote", "tdx/phala-dcap-qvl/tdx_quote_outdated",
        "tdx/google-go-tdx-guest/quote_v5_sample.dat", "azure-vtpm/trustee-az-tdx-vtpm/td-quote.bin",
        "tdx/google-go-tdx-guest/ccel_cos-113-tdx-quote.dat", "derived/decoded-hex/phala_tdx-quote.bin",
    ]

    static func intelRoot() throws -> Certificate {
        try Certificate(derEncoded: bytes("intel-pki/phala-dcap-qvl/TrustedRootCA.der"))
    }

    /// 2025-07-19, inside every certificate's validity (the time the dcap-qvl test uses).
    static let time = Date(timeIntervalSince1970: 1_752_919_277)
}
