import Instrumentation
import PortalRPC
import Tracing

/// A server span per call, named after its method (`portal.gateway.v1.PortalService/Activate`), child
/// of the caller's span when it sent `traceparent`; the call runs in the span's context, so its
/// outgoing calls, database transactions and log lines belong to the trace.
///
/// Attributes follow OpenTelemetry's RPC conventions (`rpc.system`, `rpc.service`, `rpc.method`,
/// `rpc.grpc.status_code`, `client.address`) with the portal's `portal.request_id` and
/// `portal.organization_id`; a status that is the server's fault marks the span an error.
public struct ServerSpans: ServerCallTracer {
    private let tracer: PortalTracer

    /// Spans of `tracer`.
    public init(tracer: PortalTracer) {
        self.tracer = tracer
    }

    /// Runs `body` inside the call's span.
    public func traceCall(_ context: ServerContext, _ body: () async -> RPCError?) async -> RPCError? {
        var caller = ServiceContext.topLevel
        tracer.extract(context.requestMetadata, into: &caller, using: MetadataExtractor())
        let span = tracer.startSpan(context.method.description, context: caller, ofKind: .server)
        let outcome = await ServiceContext.withValue(span.context) { await body() }
        if span.isRecording {
            // Set once, at the end: each change of a span's attributes copies them.
            let code = outcome?.code ?? .ok
            var attributes = SpanAttributes.call(context.method)
            attributes["client.address"] = context.peerAddress
            attributes["portal.request_id"] = context.requestID
            attributes["rpc.grpc.status_code"] = code.rawValue
            if let organization = context.principal?.organizationID
                ?? context.requestMetadata.firstString(forKey: PrincipalMetadata.organizationID)
            {
                attributes["portal.organization_id"] = organization
            }
            span.attributes = attributes
            if let outcome, code.isServerFault { span.setStatus(SpanStatus(code: .error, message: outcome.message)) }
        }
        span.end()
        return outcome
    }
}

extension RPCStatusCode {
    /// Whether a server span with this status is an error (OpenTelemetry's list for gRPC servers):
    /// the server failed, not the caller.
    var isServerFault: Bool {
        switch self {
        case .unknown, .deadlineExceeded, .unimplemented, .internal, .unavailable, .dataLoss: true
        default: false
        }
    }
}

extension SpanAttributes {
    /// The attributes OpenTelemetry's RPC conventions give a span of a call to `method`.
    static func call(_ method: MethodDescriptor) -> SpanAttributes {
        ["rpc.system": "grpc", "rpc.service": .string(method.service), "rpc.method": .string(method.method)]
    }
}
