import NIOCore
import NIOPosix

/// Which endpoints a webhook may reach, checked on the addresses its host resolves to (when it is
/// registered, and again before every delivery, which then connects to the address checked): public
/// addresses over https only; loopback, private and link-local ones (where a request could reach
/// internal systems) only when the operator allows them, and plain http only to loopback.
public struct WebhookTargetPolicy: Sendable {
    /// Whether loopback, private and link-local addresses may be reached (development, or an
    /// operator who delivers to internal systems on purpose).
    public var allowPrivateNetworks: Bool

    /// A policy; private networks refused unless `allowPrivateNetworks`.
    public init(allowPrivateNetworks: Bool = false) {
        self.allowPrivateNetworks = allowPrivateNetworks
    }

    /// Why an endpoint may not be reached.
    public struct Refusal: Error, CustomStringConvertible, Sendable {
        /// What is wrong, for the Admin who registered it.
        public let description: String
    }

    /// The addresses `url` may be reached at, resolved now; throws `Refusal` (or `WebhookURL.Invalid`).
    public func addresses(for url: WebhookURL) async throws -> [SocketAddress] {
        let addresses = try await Self.resolve(url.host, port: url.port)
        guard !addresses.isEmpty else { throw Refusal(description: "\(url.host) does not resolve to an address") }
        for address in addresses {
            switch AddressRange(address) {
            case .public: continue
            case .forbidden:
                throw Refusal(description: "\(url.host) resolves to \(Self.ip(address)), which cannot receive webhooks")
            case .loopback, .privateNetwork:
                guard allowPrivateNetworks else {
                    throw Refusal(
                        description:
                            "\(url.host) resolves to \(Self.ip(address)), a private, loopback or link-local address; this portal delivers only to public addresses"
                    )
                }
            }
        }
        if url.scheme == "http", !addresses.allSatisfy({ AddressRange($0) == .loopback }) {
            throw Refusal(description: "must start with https:// (http only to loopback, in development)")
        }
        return addresses
    }

    /// Checks the URL and its addresses (see `addresses(for:)`).
    public func check(_ text: String) async throws -> WebhookURL {
        let url = try WebhookURL(text)
        _ = try await addresses(for: url)
        return url
    }

    private static func ip(_ address: SocketAddress) -> String { address.ipAddress ?? "\(address)" }

    /// The host's addresses from the system resolver (an IP literal resolves to itself), on NIO's thread pool.
    static func resolve(_ host: String, port: Int) async throws -> [SocketAddress] {
        try await NIOThreadPool.singleton.runIfActive {
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var results: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host, String(port), &hints, &results) == 0, let first = results else {
                throw Refusal(description: "\(host) does not resolve to an address")
            }
            defer { freeaddrinfo(first) }
            var addresses: [SocketAddress] = []
            var cursor: UnsafeMutablePointer<addrinfo>? = first
            while let entry = cursor {
                if let address = entry.pointee.ai_addr {
                    switch Int32(address.pointee.sa_family) {
                    case AF_INET:
                        address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                            addresses.append(SocketAddress($0.pointee, host: host))
                        }
                    case AF_INET6:
                        address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                            addresses.append(SocketAddress($0.pointee, host: host))
                        }
                    default: break
                    }
                }
                cursor = entry.pointee.ai_next
            }
            return addresses
        }
    }
}

/// What kind of network an address belongs to.
enum AddressRange: Equatable {
    case `public`, loopback, privateNetwork, forbidden

    init(_ address: SocketAddress) {
        switch address {
        case .v4(let v4): self = Self.classify(v4: UInt32(bigEndian: v4.address.sin_addr.s_addr))
        case .v6(let v6):
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            self = Self.classify(v6: bytes)
        default: self = .forbidden
        }
    }

    static func classify(v4 value: UInt32) -> AddressRange {
        func within(_ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: UInt32, _ bits: UInt32) -> Bool {
            let network = a << 24 | b << 16 | c << 8 | d
            let mask: UInt32 = bits == 0 ? 0 : ~UInt32(0) << (32 - bits)
            return value & mask == network & mask
        }
        if within(127, 0, 0, 0, 8) { return .loopback }
        if within(0, 0, 0, 0, 8) || within(224, 0, 0, 0, 4) || within(240, 0, 0, 0, 4) { return .forbidden }
        if within(10, 0, 0, 0, 8) || within(172, 16, 0, 0, 12) || within(192, 168, 0, 0, 16)
            || within(100, 64, 0, 0, 10) || within(169, 254, 0, 0, 16) || within(192, 0, 0, 0, 24)
            || within(198, 18, 0, 0, 15)
        {
            return .privateNetwork
        }
        return .public
    }

    static func classify(v6 bytes: [UInt8]) -> AddressRange {
        if bytes == [UInt8](repeating: 0, count: 15) + [1] { return .loopback }
        if bytes.allSatisfy({ $0 == 0 }) || bytes[0] == 0xff { return .forbidden }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {  // IPv4-mapped
            return classify(
                v4: UInt32(bytes[12]) << 24 | UInt32(bytes[13]) << 16 | UInt32(bytes[14]) << 8 | UInt32(bytes[15]))
        }
        if bytes[0] & 0xfe == 0xfc || (bytes[0] == 0xfe && bytes[1] & 0xc0 == 0x80) { return .privateNetwork }
        return .public
    }
}
