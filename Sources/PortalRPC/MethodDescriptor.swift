/// Identifies one RPC method and its shape.
///
/// A class, made once per method: routes, contexts and calls share one descriptor instead of
/// copying (and counting references to) its four strings.
public final class MethodDescriptor: Sendable, Hashable, CustomStringConvertible {
    /// The fully qualified service name, for example `grpc.health.v1.Health`.
    public let service: String
    /// The method name, for example `Check`.
    public let method: String
    /// Whether requests and responses stream.
    public let kind: RPCKind
    /// The HTTP/2 `:path`, `/service/method`.
    public let path: String
    /// Whether the proto marks the method `idempotency_level = NO_SIDE_EFFECTS`: it only reads.
    public let hasNoSideEffects: Bool

    /// Creates a descriptor.
    public init(service: String, method: String, kind: RPCKind, hasNoSideEffects: Bool = false) {
        self.service = service
        self.method = method
        self.kind = kind
        self.hasNoSideEffects = hasNoSideEffects
        path = "/\(service)/\(method)"
    }

    /// `service/method`.
    public var description: String { "\(service)/\(method)" }

    /// Whether both name the same method with the same shape.
    public static func == (lhs: MethodDescriptor, rhs: MethodDescriptor) -> Bool {
        lhs === rhs || (lhs.path == rhs.path && lhs.kind == rhs.kind && lhs.hasNoSideEffects == rhs.hasNoSideEffects)
    }

    /// Hashes the method's path.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(path)
    }
}

/// The four RPC shapes.
public enum RPCKind: Sendable, Hashable {
    case unary
    case serverStreaming
    case clientStreaming
    case bidirectionalStreaming

    /// Whether the client sends a stream of requests.
    public var streamsRequests: Bool { self == .clientStreaming || self == .bidirectionalStreaming }
    /// Whether the server sends a stream of responses.
    public var streamsResponses: Bool { self == .serverStreaming || self == .bidirectionalStreaming }
}

/// A message that can travel in an RPC: it knows its wire encoding.
public protocol RPCMessage: Sendable {
    /// Decodes a message from its wire bytes.
    init(rpcBytes: [UInt8]) throws
    /// Encodes the message to its wire bytes.
    func rpcBytes() -> [UInt8]
    /// The first field longer than its schema allows, checked on every request a server decodes.
    func fieldLimitViolation() -> FieldLimitViolation?
}
