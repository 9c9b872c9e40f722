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
    /// The portal call's request id, which the user's error messages carry.
    let requestID: String
    /// For unary calls: the caller's deadline, capped at `defaultTimeout`.
    let options: CallOptions
    /// For streams (exports): the caller's deadline only; a long export may take its time.
    let streamOptions: CallOptions

    /// A call for `context`, acting as `caller` (nil for calls made before sign-in).
    init(_ context: ServerContext, caller: Caller?) throws {
        var metadata = caller?.backendMetadata ?? Metadata()
        metadata.addString(context.requestID, forKey: "x-request-id")
        // The client's own address (never one it claims): identity limits failed sign-ins per client.
        metadata.addString(context.peerAddress, forKey: PrincipalMetadata.clientAddress)
        self.metadata = metadata
        requestID = context.requestID
        var remaining: Duration?
        if let deadline = context.deadline {
            remaining = deadline - .now
            guard remaining! > .zero else {
                throw RPCError(.deadlineExceeded, "deadline exceeded before the call reached its backend")
            }
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
        return BackendCall(
            metadata: metadata, requestID: context.requestID, options: CallOptions(timeout: defaultTimeout),
            streamOptions: CallOptions(timeout: defaultTimeout))
    }

    private init(metadata: Metadata, requestID: String, options: CallOptions, streamOptions: CallOptions) {
        self.metadata = metadata
        self.requestID = requestID
        self.options = options
        self.streamOptions = streamOptions
    }

    /// Runs `body` against the backend called `backend`. Its refusals (invalid arguments, rules,
    /// not found) pass through unchanged; an outage, a timeout or an internal failure becomes a
    /// message a portal user understands, naming what is unavailable and the request id, while the
    /// backend's own error (addresses, causes) stays in the error's `cause` for the access log.
    func run<Result: Sendable>(
        _ backend: String, _ body: (Metadata, CallOptions) async throws -> Result
    ) async throws -> Result {
        do {
            return try await body(metadata, options)
        } catch let error as RPCError {
            throw userFacing(error, from: backend)
        }
    }

    /// `run` for one section of a composed answer (the dashboard): an outage, a timeout or an internal
    /// failure is a failed section, not a failed call; the backend's refusals still throw.
    func section<Result: Sendable>(
        _ backend: String, _ body: (Metadata, CallOptions) async throws -> Result
    ) async throws -> Swift.Result<Result, RPCError> {
        do {
            return .success(try await run(backend, body))
        } catch let error as RPCError where [.unavailable, .deadlineExceeded, .internal].contains(error.code) {
            return .failure(error)
        }
    }

    /// `error` from `backend` as the portal user sees it.
    func userFacing(_ error: RPCError, from backend: String) -> RPCError {
        let capability = Self.capability(of: backend)
        let reference = "try again in a moment (request \(requestID))"
        switch error.code {
        case .unavailable:
            return RPCError(.unavailable, "\(capability) is unavailable right now; \(reference)", cause: error)
        case .deadlineExceeded:
            return RPCError(.deadlineExceeded, "\(capability) did not answer in time; \(reference)", cause: error)
        case .unknown, .internal, .dataLoss, .unimplemented:
            return RPCError(.internal, "\(capability) failed to handle the request; \(reference)", cause: error)
        default:
            return error
        }
    }

    /// What a backend does for the portal user, as a message names it.
    static func capability(of backend: String) -> String {
        switch backend {
        case "identity": "sign-in and member management"
        case "entitlements": "licensing"
        case "audit": "the audit log"
        default: "the \(backend) service"
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
