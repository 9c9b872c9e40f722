import Logging
import PortalRPC

/// Runs one call on a server connection: the interceptor chain and the handler, then the stream's end.
///
/// The handler runs as a child task so the transport can cancel it (client reset, deadline,
/// connection loss) through the stream's termination signal.
struct ServerCallDispatcher: Sendable {
    let executor: ServerCallExecutor

    func run(_ stream: ServerStream) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                let error = await executor.execute(stream.route, call: RPCServerCall(context: stream.context, stream: stream))
                stream.finish(error)
                stream.termination.fire()
            }
            await stream.termination.wait()
            group.cancelAll()
        }
    }
}
