import Logging

/// Runs one call through the interceptor chain to its route's handler and maps the outcome to a
/// status: every transport (gRPC over HTTP/2, Connect on the web listener) serves calls through it.
public struct ServerCallExecutor: Sendable {
    /// The interceptors, outermost first.
    public let interceptors: [any ServerInterceptor]
    private let logger: Logger

    /// An executor running `interceptors` around every handler; unexpected handler errors are logged to `logger`.
    public init(interceptors: [any ServerInterceptor], logger: Logger) {
        self.interceptors = interceptors
        self.logger = logger
    }

    /// Runs `route`'s handler for `call`; nil when it succeeded, else the error the client receives.
    public func execute(_ route: RPCRoute, call: RPCServerCall) async -> RPCError? {
        let handler = route.handler
        do {
            // The chain's closures do not escape, so they need no allocation of their own.
            try await intercept(from: 0, context: call.context) { _ in try await handler(call) }
            return nil
        } catch let error as RPCError {
            return error
        } catch is CancellationError {
            return RPCError(.cancelled, "call cancelled")
        } catch {
            logger.error("handler failed", metadata: [
                "request_id": .string(call.context.requestID), "method": .string(route.method.description),
                "error": .string(String(describing: error)),
            ])
            return RPCError(.unknown, "the server failed to handle the call", cause: error)
        }
    }

    private func intercept(from index: Int, context: ServerContext, handler: @Sendable (ServerContext) async throws -> Void) async throws {
        guard index < interceptors.count else {
            try await handler(context)
            return
        }
        try await interceptors[index].intercept(context: context) { context in
            try await intercept(from: index + 1, context: context, handler: handler)
        }
    }
}
