import PortalAPI
import PortalRPC

/// The gateway's clients of the three backend services.
public struct GatewayBackends: Sendable {
    let identity: Portal_Identity_V1_IdentityClient
    let entitlements: Portal_Entitlements_V1_EntitlementsClient
    let audit: Portal_Audit_V1_AuditClient

    /// Clients over the given channels (one per backend).
    public init(identity: any RPCChannel, entitlements: any RPCChannel, audit: any RPCChannel) {
        self.identity = Portal_Identity_V1_IdentityClient(channel: identity)
        self.entitlements = Portal_Entitlements_V1_EntitlementsClient(channel: entitlements)
        self.audit = Portal_Audit_V1_AuditClient(channel: audit)
    }
}

/// How the gateway calls a backend for one portal call: within the caller's deadline, carrying the
/// request id and the acting member, with transport failures named after the backend.
struct BackendCall: Sendable {
    /// The longest a backend call may take when the caller set no deadline.
    static let defaultTimeout: Duration = .seconds(10)

    let metadata: Metadata
    /// For unary calls: the caller's deadline, capped at `defaultTimeout`.
    let options: CallOptions
    /// For streams (exports): the caller's deadline only; a long export may take its time.
    let streamOptions: CallOptions

    /// A call for `context`, acting as `caller` (nil for calls made before sign-in).
    init(_ context: ServerContext, caller: Caller?) throws {
        var metadata = caller?.backendMetadata ?? Metadata()
        metadata.addString(context.requestID, forKey: "x-request-id")
        self.metadata = metadata
        var remaining: Duration?
        if let deadline = context.deadline {
            remaining = deadline - .now
            guard remaining! > .zero else { throw RPCError(.deadlineExceeded, "deadline exceeded before the call reached its backend") }
        }
        options = CallOptions(timeout: min(remaining ?? Self.defaultTimeout, Self.defaultTimeout))
        streamOptions = CallOptions(timeout: remaining)
    }

    /// A read shared by several callers (see `SharedReads`): no caller's deadline or identity, since
    /// each caller's own deadline is enforced on its own call; it carries the request id of the call
    /// that started it, for the logs.
    static func shared(startedBy context: ServerContext) -> BackendCall {
        var metadata = Metadata()
        metadata.addString(context.requestID, forKey: "x-request-id")
        return BackendCall(metadata: metadata, options: CallOptions(timeout: defaultTimeout), streamOptions: CallOptions(timeout: defaultTimeout))
    }

    private init(metadata: Metadata, options: CallOptions, streamOptions: CallOptions) {
        self.metadata = metadata
        self.options = options
        self.streamOptions = streamOptions
    }

    /// Runs `body` against the backend called `backend`; its refusals pass through unchanged, and a
    /// backend that cannot be reached is `UNAVAILABLE` naming it.
    func run<Result: Sendable>(_ backend: String, _ body: (Metadata, CallOptions) async throws -> Result) async throws -> Result {
        do {
            return try await body(metadata, options)
        } catch let error as RPCError where error.code == .unavailable {
            throw RPCError(.unavailable, "the \(backend) service is unavailable: \(error.message)")
        } catch let error as RPCError where error.code == .deadlineExceeded {
            throw RPCError(.deadlineExceeded, "the \(backend) service did not answer in time")
        }
    }

    /// Streams a backend's server-streaming response through to `responses`, piece by piece: a slow
    /// reader holds the backend back through flow control, so memory stays flat.
    func stream<Piece: RPCMessage, Response: RPCMessage>(
        _ backend: String, to responses: ResponseWriter<Response>,
        open: (Metadata, CallOptions) async throws -> ResponseStream<Piece>, chunk: @escaping (Piece) -> Response
    ) async throws {
        try await run(backend) { metadata, _ in
            for try await piece in try await open(metadata, streamOptions) {
                try await responses.write(chunk(piece))
            }
        }
    }
}
