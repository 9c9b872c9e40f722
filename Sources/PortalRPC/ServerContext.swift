import Synchronization

/// What a handler knows about its call, and the metadata it wants to send back.
///
/// Shared between the handler, interceptors and the transport; its mutable parts are locked.
public final class ServerContext: Sendable {
    /// The method being called.
    public let method: MethodDescriptor
    /// The metadata the client sent with the request headers.
    public let requestMetadata: Metadata
    /// When the client stops waiting, from `grpc-timeout`; nil when it sent none.
    public let deadline: ContinuousClock.Instant?
    /// The remote address, for logs.
    public let peer: String

    /// The IP part of `peer` (`127.0.0.1` of `[IPv4]127.0.0.1/127.0.0.1:5000`, `::1` of an IPv6 peer).
    public var peerAddress: String {
        let host = peer.split(separator: "/").last.map(String.init) ?? peer
        guard let colon = host.lastIndex(of: ":") else { return host }
        return String(host[..<colon])
    }
    /// The request id: the client's `x-request-id` when valid, otherwise a fresh one.
    public let requestID: String
    /// How the call's connection is secured, and the client certificate it presented.
    public let transport: TransportSecurity

    private struct Mutable {
        var responseHeaders = Metadata()
        var responseTrailers = Metadata()
        var principal: RPCPrincipal?
    }

    private let state = Locked(Mutable())

    /// Creates a context; the transport does this for every call.
    public init(
        method: MethodDescriptor, requestMetadata: Metadata, deadline: ContinuousClock.Instant?, peer: String,
        requestID: String,
        transport: TransportSecurity = .cleartext
    ) {
        self.method = method
        self.requestMetadata = requestMetadata
        self.deadline = deadline
        self.peer = peer
        self.requestID = requestID
        self.transport = transport
    }

    /// Metadata sent with the response headers (before the first response message).
    public var responseHeaders: Metadata {
        get { state.withLock { $0.responseHeaders } }
        set { state.withLock { $0.responseHeaders = newValue } }
    }

    /// Metadata sent with the trailers when the call ends successfully.
    public var responseTrailers: Metadata {
        get { state.withLock { $0.responseTrailers } }
        set { state.withLock { $0.responseTrailers = newValue } }
    }

    /// Who is calling, once an authentication interceptor has established it.
    public var principal: RPCPrincipal? {
        get { state.withLock { $0.principal } }
        set { state.withLock { $0.principal = newValue } }
    }

    /// Throws `DEADLINE_EXCEEDED` when the deadline has passed and `CANCELLED` when the call was cancelled.
    public func checkLive() throws {
        if let deadline, ContinuousClock.now >= deadline {
            throw RPCError(.deadlineExceeded, "deadline exceeded")
        }
        if Task.isCancelled {
            throw RPCError(.cancelled, "call cancelled")
        }
    }
}

/// The authenticated caller of an RPC.
public struct RPCPrincipal: Sendable, Hashable {
    /// A stable id of the caller (a member id, or a service name).
    public var subject: String
    /// The organization the caller acts in, if any.
    public var organizationID: String?
    /// The caller's role, if any.
    public var role: String?
    /// A name to show in audit records.
    public var displayName: String

    /// Creates a principal.
    public init(subject: String, organizationID: String? = nil, role: String? = nil, displayName: String) {
        self.subject = subject
        self.organizationID = organizationID
        self.role = role
        self.displayName = displayName
    }
}
