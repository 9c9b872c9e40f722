import Logging

/// Runs one call through the interceptor chain to its route's handler and maps the outcome to a
/// status, telling the observers when it starts and ends: every transport (gRPC over HTTP/2,
/// Connect on the web listener) serves calls through it.
public final class ServerCallExecutor: Sendable {
    /// The interceptors, outermost first.
    public let interceptors: [any ServerInterceptor]
    /// The observers, told of every call in this order.
    public let observers: [any ServerCallObserver]
    /// Runs every call inside a trace span; nil when tracing is off.
    public let tracer: (any ServerCallTracer)?
    private let logger: Logger

    /// An executor running `interceptors` around every handler and telling `observers` of each
    /// call, each inside a span of `tracer` when there is one; unexpected handler errors are logged
    /// to `logger`.
    public init(
        interceptors: [any ServerInterceptor], observers: [any ServerCallObserver] = [],
        tracer: (any ServerCallTracer)? = nil, logger: Logger
    ) {
        self.interceptors = interceptors
        self.observers = observers
        self.tracer = tracer
        self.logger = logger
    }

    /// Runs `route`'s handler for `call`; nil when it succeeded, else the error the client receives.
    ///
    /// Every task that runs a call carries this function's frame, so the work around the handler
    /// (observers, interceptors, mapping errors) is done in functions of their own.
    public func execute(_ route: RPCRoute, call: RPCServerCall) async -> RPCError? {
        if let tracer { return await traced(route, call: call, tracer: tracer) }
        return await run(route, call: call)
    }

    @inline(never)
    private func traced(_ route: RPCRoute, call: RPCServerCall, tracer: any ServerCallTracer) async -> RPCError? {
        await tracer.traceCall(call.context) { await run(route, call: call) }
    }

    // Inlined into `execute`, so an untraced call's task carries no frame more.
    @inline(__always)
    private func run(_ route: RPCRoute, call: RPCServerCall) async -> RPCError? {
        let started = callStarted(call.context)
        let outcome: RPCError?
        do {
            if interceptors.isEmpty {
                try await route.handler(call)
            } else {
                try await intercepted(route.handler, call: call)
            }
            outcome = nil
        } catch {
            outcome = status(for: error, route: route, context: call.context)
        }
        if let started { callEnded(call.context, outcome: outcome, started: started) }
        return outcome
    }

    /// Tells the observers a call starts; when it started, nil without observers.
    @inline(never)
    private func callStarted(_ context: ServerContext) -> ContinuousClock.Instant? {
        guard !observers.isEmpty else { return nil }
        for observer in observers { observer.callStarted(context) }
        return ContinuousClock.now
    }

    @inline(never)
    private func callEnded(_ context: ServerContext, outcome: RPCError?, started: ContinuousClock.Instant) {
        let duration = ContinuousClock.now - started
        for observer in observers { observer.callEnded(context, error: outcome, duration: duration) }
    }

    @inline(never)
    private func intercepted(
        _ handler: @Sendable (RPCServerCall) async throws -> Void, call: RPCServerCall
    ) async throws {
        // The chain's closures do not escape, so they need no allocation of their own.
        try await intercept(from: 0, context: call.context) { _ in try await handler(call) }
    }

    /// The status a client receives for a handler's error; an error that names no status (not
    /// `RPCErrorConvertible`) or cancellation is logged and becomes `UNKNOWN`.
    @inline(never)
    private func status(for error: any Error, route: RPCRoute, context: ServerContext) -> RPCError {
        if let error = error as? RPCError { return error }
        if let error = error as? any RPCErrorConvertible { return error.rpcError }
        if error is CancellationError { return RPCError(.cancelled, "call cancelled") }
        logger.error(
            "handler failed",
            metadata: [
                "request_id": .string(context.requestID), "method": .string(route.method.description),
                "error": .string(String(describing: error)),
            ])
        return RPCError(.unknown, "the server failed to handle the call", cause: error)
    }

    private func intercept(
        from index: Int, context: ServerContext, handler: @Sendable (ServerContext) async throws -> Void
    ) async throws {
        guard index < interceptors.count else {
            try await handler(context)
            return
        }
        try await interceptors[index].intercept(context: context) { context in
            try await intercept(from: index + 1, context: context, handler: handler)
        }
    }
}
