/// The four services of the portal, with their default ports and the gRPC services they host.
public enum PortalServiceKind: String, CaseIterable, Sendable {
    case gateway
    case entitlements
    case identity
    case audit

    /// The port the service listens on unless told otherwise.
    public var defaultPort: Int {
        switch self {
        case .gateway: 50050
        case .entitlements: 50051
        case .identity: 50052
        case .audit: 50053
        }
    }

    /// Whether the service records audit events of its own (through its outbox, relayed to audit).
    public var recordsAuditEvents: Bool { self == .identity || self == .entitlements }

    /// The port the service takes when the four are laid out from `base` (the gateway's port) in
    /// the order of their default ports.
    public func port(base: Int) -> Int { base + defaultPort - PortalServiceKind.gateway.defaultPort }
}
