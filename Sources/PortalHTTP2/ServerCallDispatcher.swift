import Logging
import PortalRPC

/// Runs one call: the interceptor chain and the handler, mapping the outcome to a gRPC status.
///
/// The handler runs as a child task so the transport can cancel it (client reset, deadline,
/// connection loss) through the stream's termination signal.
struct ServerCallDispatcher: Sendable {
    let interceptors: [any ServerInterceptor]
    let logger: Logger

    func run(_ stream: ServerStream) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                let error = await execute(stream)
                stream.finish(error)
                stream.termination.fire()
            }
            await stream.termination.wait()
            group.cancelAll()
        }
    }

    private func execute(_ stream: ServerStream) async -> RPCError? {
        let call = RPCServerCall(context: stream.context, stream: stream)
        let handler = stream.route.handler
        do {
            try await intercept(from: 0, context: stream.context) { _ in try await handler(call) }
            return nil
        } catch let error as RPCError {
            return error
        } catch is CancellationError {
            return RPCError(.cancelled, "call cancelled")
        } catch {
            logger.error("handler failed", metadata: [
                "request_id": .string(stream.context.requestID), "method": .string(stream.route.method.description),
                "error": .string(String(describing: error)),
            ])
            return RPCError(.unknown, "the server failed to handle the call", cause: error)
        }
    }

    private func intercept(from index: Int, context: ServerContext, handler: @escaping @Sendable (ServerContext) async throws -> Void) async throws {
        guard index < interceptors.count else {
            try await handler(context)
            return
        }
        try await interceptors[index].intercept(context: context) { context in
            try await intercept(from: index + 1, context: context, handler: handler)
        }
    }
}
