internal import Foundation

extension KeyReleasePolicy {
    /// An authority or issuer URL normalized as the key broker compares them (a policy's `authority`, a token's
    /// `iss`, the authorities a broker names in its evidence): `https`/`http` only, with a host and nothing but a path;
    /// scheme and host in lower case, the default port and trailing slashes dropped. `nil` when it is not such a URL
    /// (user information, a query or a fragment included).
    public static func normalizedAuthority(_ text: String) -> String? {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            scheme == "https" || scheme == "http", let host = components.host, !host.isEmpty,
            components.user == nil, components.password == nil, components.query == nil,
            components.fragment == nil
        else { return nil }
        var path = components.path
        while path.hasSuffix("/") { path.removeLast() }
        var normalized = scheme + "://" + host.lowercased()
        if let port = components.port, !(scheme == "https" && port == 443), !(scheme == "http" && port == 80) {
            normalized += ":\(port)"
        }
        return normalized + path
    }
}
