/// A webhook endpoint's address, parsed and checked: http(s), a host, an optional port and a path.
public struct WebhookURL: Sendable, Equatable {
    /// `https` or `http`.
    public let scheme: String
    /// The host name or IP literal (IPv6 without brackets).
    public let host: String
    /// The port (443 or 80 when the URL names none).
    public let port: Int
    /// The path and query sent in the request line, from `/`.
    public let target: String
    /// The URL as given.
    public let text: String

    /// Why a URL is refused.
    public struct Invalid: Error, CustomStringConvertible, Sendable {
        /// What is wrong, for the caller.
        public let description: String
    }

    /// Parses `text`; throws `Invalid` saying what is wrong.
    public init(_ text: String) throws {
        guard text.utf8.count <= 2048 else { throw Invalid(description: "must be at most 2,048 characters") }
        guard !text.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 || $0 == 0x7f } ?? false })
        else { throw Invalid(description: "must not contain spaces or control characters") }
        let lower = text.lowercased()
        let rest: Substring
        if lower.hasPrefix("https://") {
            scheme = "https"
            rest = text.dropFirst(8)
        } else if lower.hasPrefix("http://") {
            scheme = "http"
            rest = text.dropFirst(7)
        } else {
            throw Invalid(description: "must start with https://")
        }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        guard !authority.contains("@") else { throw Invalid(description: "must not carry a user name or password") }
        var path = String(rest[authorityEnd...])
        if let fragment = path.firstIndex(of: "#") { path = String(path[..<fragment]) }
        target = path.isEmpty ? "/" : (path.hasPrefix("/") ? path : "/" + path)
        var hostPart = Substring(authority)
        var portText: Substring?
        if hostPart.hasPrefix("[") {
            guard let close = hostPart.firstIndex(of: "]") else { throw Invalid(description: "has an unclosed [") }
            let after = hostPart[hostPart.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw Invalid(description: "has text after the IPv6 address")
            }
            hostPart = hostPart[hostPart.index(after: hostPart.startIndex)..<close]
        } else if let colon = hostPart.lastIndex(of: ":") {
            portText = hostPart[hostPart.index(after: colon)...]
            hostPart = hostPart[..<colon]
        }
        guard !hostPart.isEmpty else { throw Invalid(description: "has no host") }
        host = hostPart.lowercased()
        if let portText {
            guard let port = Int(portText), (1...65535).contains(port) else {
                throw Invalid(description: "has a port that is not between 1 and 65535")
            }
            self.port = port
        } else {
            port = scheme == "https" ? 443 : 80
        }
        self.text = text
    }

    /// The `Host` header: the host, and the port when it is not the scheme's.
    public var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (scheme == "https" ? 443 : 80) ? name : "\(name):\(port)"
    }
}
