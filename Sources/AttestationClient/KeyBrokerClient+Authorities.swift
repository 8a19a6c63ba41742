internal import AttestationAPI
internal import Crypto
internal import EnclaveCore
internal import Foundation

extension KeyBrokerClient {
    /// A certificate's thumbprint as the attestation service names it in `kid` and the broker pins it: base64url
    /// (unpadded) SHA-256 of its DER.
    public static func thumbprint(_ certificateDER: [UInt8]) -> String {
        Base64URL.encode(Array(SHA256.hash(data: certificateDER)))
    }

    /// The authorities a broker's verified token binds (`x-ms-runtime.authorities`), checked to be exactly the ones
    /// `expecting` names (by default `attestation` with the certificates of its `/certs`).
    /// - Throws: ``AttestationClient/Failure`` `BrokerAuthoritiesNotExpected`, or the service's errors.
    func checkAuthorities(
        _ claims: AttestationTokenClaims,
        expecting: KeyBrokerExpectation,
        attestation: AttestationClient
    ) async throws -> [KeyBrokerExpectation.Authority] {
        let code = ImportRefusal.authoritiesNotExpected
        guard case .object(let runtime)? = claims["x-ms-runtime"], case .array(let list)? = runtime["authorities"]
        else {
            throw AttestationClient.Failure(
                status: 0,
                code: code,
                message: "the broker's evidence names no trusted authorities (an older broker?)"
            )
        }
        var bound: [String: Set<String>] = [:]
        for entry in list {
            guard case .object(let members) = entry, case .string(let url)? = members["url"],
                case .array(let values)? = members["thumbprints"], bound[url] == nil
            else {
                throw AttestationClient.Failure(
                    status: 0,
                    code: code,
                    message: "the broker's evidence names its authorities in an unreadable form"
                )
            }
            var thumbprints = Set<String>()
            for value in values {
                guard case .string(let thumbprint) = value else {
                    throw AttestationClient.Failure(status: 0, code: code, message: "a thumbprint is not a string")
                }
                thumbprints.insert(thumbprint)
            }
            bound[url] = thumbprints
        }
        let expected: [KeyBrokerExpectation.Authority]
        if let authorities = expecting.authorities {
            expected = authorities
        } else {
            expected = [try await Self.authority(of: attestation)]
        }
        var wanted: [String: Set<String>] = [:]
        for authority in expected {
            guard let url = Self.normalizeAuthority(authority.url) else {
                throw AttestationClient.Failure(
                    status: 0,
                    code: code,
                    message: "the expected authority \(authority.url) is not an http(s) URL"
                )
            }
            wanted[url, default: []].formUnion(authority.thumbprints)
        }
        for (url, thumbprints) in bound.sorted(by: { $0.key < $1.key }) {
            guard let expectedThumbprints = wanted[url] else {
                throw AttestationClient.Failure(
                    status: 0,
                    code: code,
                    message: "the broker enclave trusts the authority \(url.prefix(200)), which is not expected"
                )
            }
            guard expectedThumbprints == thumbprints else {
                throw AttestationClient.Failure(
                    status: 0,
                    code: code,
                    message: "the broker enclave trusts other signing certificates for \(url.prefix(200)) "
                        + "(\(thumbprints.sorted().joined(separator: ", ").prefix(500))) than expected "
                        + "(\(expectedThumbprints.sorted().joined(separator: ", ")))"
                )
            }
        }
        for url in wanted.keys.sorted() where bound[url] == nil {
            throw AttestationClient.Failure(
                status: 0,
                code: code,
                message: "the broker enclave does not trust the expected authority \(url)"
            )
        }
        return bound.keys.sorted().map { KeyBrokerExpectation.Authority(url: $0, thumbprints: bound[$0] ?? []) }
    }

    /// The attestation service as an authority: its URL (the issuer its OpenID configuration names) and the signing
    /// certificates its `/certs` publishes (`x5c[0]` of each key), both fetched over `attestation`'s TLS trust.
    /// - Throws: ``AttestationClient/Failure`` — `Unreachable`, or `BrokerAuthoritiesNotExpected` when `/certs`
    ///   names no certificate.
    public static func authority(of attestation: AttestationClient) async throws -> KeyBrokerExpectation.Authority {
        let jwks = try await attestation.certificates()
        guard let set = try? WireJSON.decode(JSONWebKeySet.self, from: Array(jwks.utf8)) else {
            throw AttestationClient.Failure(
                status: 0,
                code: ImportRefusal.authoritiesNotExpected,
                message: "the attestation service's /certs is not a JWKS"
            )
        }
        let certificates = set.keys.compactMap { $0.x5c?.first }.compactMap { Data(base64Encoded: $0) }.map {
            Array($0)
        }
        guard !certificates.isEmpty else {
            throw AttestationClient.Failure(
                status: 0,
                code: ImportRefusal.authoritiesNotExpected,
                message: "the attestation service's /certs names no certificate (x5c)"
            )
        }
        // The URL the service names itself by in its tokens' `iss` (its OpenID configuration): the URL a broker must
        // trust for any of its tokens to release a key.
        return KeyBrokerExpectation.Authority(url: try await attestation.issuer(), certificates: certificates)
    }

    /// An authority URL normalized as the broker compares authorities (`KeyReleasePolicy.normalizedAuthority`).
    /// `nil` when it is not an http(s) URL with a host and only a path.
    public static func normalizeAuthority(_ text: String) -> String? { KeyReleasePolicy.normalizedAuthority(text) }
}
