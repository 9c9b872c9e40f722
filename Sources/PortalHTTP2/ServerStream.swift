import NIOCore
import PortalRPC
import Synchronization

/// One gRPC call on a server connection: the bridge between the event loop and the handler task.
///
/// Fields marked "event loop" are only touched on the connection's event loop; the rest is immutable
/// or guarded by `shared`. That split is why the class is `@unchecked Sendable`.
final class ServerStream: ServerCallStream, MessageReceiver, @unchecked Sendable {
    /// Response bytes buffered beyond this make a streaming handler wait (backpressure).
    static let highWaterMark = 256 << 10
    /// A waiting handler resumes once the buffer drains below this.
    static let lowWaterMark = 64 << 10

    let id: Int32
    let route: RPCRoute
    let context: ServerContext
    let inbound: InboundMessageQueue
    let termination = CallTermination()
    let eventLoop: any EventLoop
    unowned(unsafe) let connection: HTTP2ServerConnectionHandler

    private struct Shared {
        var bufferedBytes = 0
        var writerWaiter: CheckedContinuation<Void, any Error>?
        var finalResponse: [UInt8]?
        var closedError: RPCError?
    }

    private let shared = Locked(Shared())

    // Event loop state.
    var deframer: GRPCMessageDeframer
    var outbound = OutboundMessages()
    var headersSent = false
    var finished = false
    var closed = false
    var pendingTrailers: [(String, String)]?
    /// What of the peer's send window this stream still owes it.
    var receiveWindow = ReceiveWindow()
    var deadlineTimer: Scheduled<Void>?

    init(id: Int32, route: RPCRoute, context: ServerContext, maxMessageBytes: Int, connection: HTTP2ServerConnectionHandler, eventLoop: any EventLoop) {
        self.id = id
        self.route = route
        self.context = context
        self.connection = connection
        self.eventLoop = eventLoop
        deframer = GRPCMessageDeframer(maxMessageBytes: maxMessageBytes)
        // Taking a buffered request may make room to reopen the stream's receive window.
        let bound = NIOLoopBound(connection, eventLoop: eventLoop)
        let streamID = id
        inbound = InboundMessageQueue { [eventLoop] in
            eventLoop.execute { bound.value.repayWindow(streamID: streamID) }
        }
    }

    // MARK: Handler side (any thread)

    func nextRequest() async throws -> [UInt8]? {
        try await inbound.next()
    }

    func sendResponse(_ message: [UInt8]) async throws {
        guard route.method.kind.streamsResponses else {
            try shared.withLock { shared in
                if let error = shared.closedError { throw error }
                guard shared.finalResponse == nil else {
                    throw RPCError(.internal, "a unary method sent more than one response")
                }
                shared.finalResponse = message
            }
            return
        }
        let mustWait = try shared.withLock { shared in
            if let error = shared.closedError { throw error }
            shared.bufferedBytes += message.count + 5
            return shared.bufferedBytes > Self.highWaterMark
        }
        onEventLoop { self.connection.write(message, on: self) }
        if mustWait {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome = shared.withLock { shared -> Result<Void, RPCError>? in
                    if let error = shared.closedError { return .failure(error) }
                    if shared.bufferedBytes <= Self.lowWaterMark { return .success(()) }
                    shared.writerWaiter = continuation
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        }
    }

    /// Ends the call with `error` (nil for OK); called once by the dispatcher when the handler returns.
    func finish(_ error: RPCError?) {
        let finalResponse = shared.withLock { shared in
            defer { shared.finalResponse = nil }
            return shared.finalResponse
        }
        onEventLoop {
            self.connection.finish(self, finalResponse: error == nil ? finalResponse : nil, error: error)
        }
    }

    /// Runs `body` on the event loop: now when already there (handlers usually are), else soon.
    private func onEventLoop(_ body: @escaping @Sendable () -> Void) {
        if eventLoop.inEventLoop {
            body()
        } else {
            eventLoop.execute(body)
        }
    }

    // MARK: Event loop side

    /// Marks `count` response bytes as handed to nghttp2, waking a writer waiting for room.
    func released(_ count: Int) {
        let waiter = shared.withLock { shared -> CheckedContinuation<Void, any Error>? in
            shared.bufferedBytes -= count
            guard shared.bufferedBytes <= Self.lowWaterMark else { return nil }
            defer { shared.writerWaiter = nil }
            return shared.writerWaiter
        }
        waiter?.resume()
    }

    /// Stops the handler: pending and future reads and writes fail with `error`, and the task is cancelled.
    func abort(_ error: RPCError) {
        deadlineTimer?.cancel()
        deadlineTimer = nil
        let waiter = shared.withLock { shared -> CheckedContinuation<Void, any Error>? in
            if shared.closedError == nil { shared.closedError = error }
            defer { shared.writerWaiter = nil }
            return shared.writerWaiter
        }
        waiter?.resume(throwing: error)
        inbound.fail(error)
        termination.fire()
    }
}
