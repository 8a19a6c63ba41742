import Attestation
import EnclaveCore
import Foundation
import HTTPTypes
import Hummingbird
import Synchronization
import Testing

/// A PCCS on 127.0.0.1 serving real PCS-format collateral from the vectors, with the v4 paths and issuer-chain
/// headers (URL-encoded PEM), counting requests by path. It can answer garbage, stall, or be stopped.
final class FakePCCS: Sendable {
    /// One response: body and headers.
    struct Answer: Sendable {
        var body: [UInt8]
        var headers: [(String, String)] = []
    }

    /// How it answers.
    enum Mode: Sendable {
        case normal
        /// 200 with a body that is no collateral at all.
        case garbage
        /// Sleep this long before answering.
        case stall(Duration)
        /// 302 elsewhere on the same server.
        case redirect
        /// 503, as a PCCS that is down behind its proxy (the request is still counted).
        case unavailable
    }

    struct State {
        var answers: [String: Answer] = [:]
        var counts: [String: Int] = [:]
        var mode = Mode.normal
    }

    let state = Mutex(State())
    private(set) nonisolated(unsafe) var port = 0
    private nonisolated(unsafe) var task: Task<Void, any Error>?

    static func encoded(_ pem: String) -> String {
        pem.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? pem
    }

    /// Serve one dcap-qvl collateral bundle (the pieces as a PCS answers them) for `tee`.
    func serve(bundle path: String, tee: String) throws {
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(Vectors.bytes(path))) as? [String: String]
        )
        func field(_ key: String) throws -> String { try #require(object[key], "\(path) lacks \(key)") }
        let tcbInfo = try field("tcb_info")
        let fmspc = try #require(
            (try JSONSerialization.jsonObject(with: Data(tcbInfo.utf8)) as? [String: Any])?["fmspc"] as? String
        )
        let pckCRL = try #require(Hex.decode(try field("pck_crl")))
        let ca =
            String(describing: try CertificateRevocationList(bytes: pckCRL).issuer).contains("Processor")
            ? "processor" : "platform"
        let tcbBody = "{\"tcbInfo\":\(tcbInfo),\"signature\":\"\(try field("tcb_info_signature"))\"}"
        let qeBody =
            "{\"enclaveIdentity\":\(try field("qe_identity")),\"signature\":\"\(try field("qe_identity_signature"))\"}"
        let tcbChain = Self.encoded(try field("tcb_info_issuer_chain"))
        set(
            "/\(tee)/certification/v4/tcb?fmspc=\(fmspc.uppercased())",
            Answer(body: Array(tcbBody.utf8), headers: [("TCB-Info-Issuer-Chain", tcbChain)])
        )
        set(
            "/\(tee)/certification/v4/qe/identity",
            Answer(
                body: Array(qeBody.utf8),
                headers: [("SGX-Enclave-Identity-Issuer-Chain", Self.encoded(try field("qe_identity_issuer_chain")))]
            )
        )
        set(
            "/sgx/certification/v4/pckcrl?ca=\(ca)&encoding=der",
            Answer(
                body: pckCRL,
                headers: [("SGX-PCK-CRL-Issuer-Chain", Self.encoded(try field("pck_crl_issuer_chain")))]
            )
        )
        set("/sgx/certification/v4/rootcacrl", Answer(body: try #require(Hex.decode(try field("root_ca_crl")))))
    }

    /// Serve go-tdx-guest's PCS response files as they are (TDX, FMSPC 50806F000000, PCK Platform CA), with the
    /// v3 header name for the TCB info chain.
    func serveGoTDXGuest() throws {
        let directory = "tdx/google-go-tdx-guest/"
        func pem(_ name: String) throws -> String {
            Self.encoded(String(decoding: try Vectors.bytes(directory + name), as: UTF8.self))
        }
        set(
            "/tdx/certification/v4/tcb?fmspc=50806F000000",
            Answer(
                body: try Vectors.bytes(directory + "sample_tcbInfo_response"),
                headers: [("SGX-TCB-Info-Issuer-Chain", try pem("tcbInfoIssuerChain.pem"))]
            )
        )
        set(
            "/tdx/certification/v4/qe/identity",
            Answer(
                body: try Vectors.bytes(directory + "sample_qeIdentity_response"),
                headers: [("SGX-Enclave-Identity-Issuer-Chain", try pem("qeIdentityIssuerChain.pem"))]
            )
        )
        set(
            "/sgx/certification/v4/pckcrl?ca=platform&encoding=der",
            Answer(
                body: try Vectors.bytes(directory + "pckcrl"),
                headers: [("SGX-PCK-CRL-Issuer-Chain", try pem("pckCrlIssuerChain.pem"))]
            )
        )
        set("/sgx/certification/v4/rootcacrl", Answer(body: try Vectors.bytes(directory + "rootcrl.der")))
    }

    func set(_ pathAndQuery: String, _ answer: Answer) { state.withLock { $0.answers[pathAndQuery] = answer } }
    func setMode(_ mode: Mode) { state.withLock { $0.mode = mode } }
    var counts: [String: Int] { state.withLock { $0.counts } }
    var total: Int { counts.values.reduce(0, +) }

    /// Start listening on a free loopback port.
    func start() async throws {
        let router = Router()
        router.get("**") { request, _ -> Response in
            let key = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
            let (answer, mode) = self.state.withLock { state in
                state.counts[key, default: 0] += 1
                return (state.answers[key], state.mode)
            }
            switch mode {
            case .normal: break
            case .garbage:
                return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "<html>not collateral</html>")))
            case .stall(let duration): try await Task.sleep(for: duration)
            case .redirect:
                return Response(status: .found, headers: [.location: key + (key.contains("?") ? "&" : "?") + "moved"])
            case .unavailable: return Response(status: .serviceUnavailable)
            }
            guard let answer else { return Response(status: .notFound) }
            var headers = HTTPFields()
            for (name, value) in answer.headers {
                if let field = HTTPField.Name(name) { headers[field] = value }
            }
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
        }
        (task, port) = try await Loopback.serve(router)
    }

    /// Stop listening: later fetches are refused connections.
    func stop() async {
        task?.cancel()
        _ = await task?.result
        task = nil
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }
}
