/// Runs each call a server handles inside a trace span (see PortalTracing), so the handler's work,
/// its outgoing calls and its log lines belong to the caller's trace.
public protocol ServerCallTracer: Sendable {
    /// Runs `body`, the whole call (interceptors, handler, observers), inside a span for `context`;
    /// returns what `body` returns: nil when the call succeeded, else the error the client receives.
    func traceCall(_ context: ServerContext, _ body: () async -> RPCError?) async -> RPCError?
}
