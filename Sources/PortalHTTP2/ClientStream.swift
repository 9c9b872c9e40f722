import NIOCore
import PortalRPC
import Synchronization

/// One client call on a connection: the bridge between the caller's task and the event loop.
///
/// Fields marked "event loop" are only touched on the connection's event loop; the rest is immutable
/// or guarded by `shared`, which is why the class is `@unchecked Sendable`.
final class ClientStream: ClientCallStream, MessageReceiver, @unchecked Sendable {
    let method: MethodDescriptor
    let inbound: InboundMessageQueue
    let window: ResponseWindow
    let connection: NIOLoopBound<ClientConnection>

    private struct Shared {
        var bufferedBytes = 0
        var writerWaiter: CheckedContinuation<Void, any Error>?
        var closedError: RPCError?
        var headers: Metadata?
        var headersWaiters: [CheckedContinuation<Metadata, any Error>] = []
        var trailers: Metadata?
        var trailersWaiters: [CheckedContinuation<Metadata, any Error>] = []
    }

    private let shared = Locked(Shared())

    // Event loop state.
    var id: Int32 = 0 {
        didSet { window.streamID.store(id, ordering: .relaxed) }
    }
    var deframer: GRPCMessageDeframer
    var requestsFinished = false
    var receivedHeaders = false
    var ended = false
    var deadlineTimer: Scheduled<Void>?
    /// What of the peer's send window this stream still owes it.
    var receiveWindow = ReceiveWindow()

    init(method: MethodDescriptor, maxMessageBytes: Int, connection: NIOLoopBound<ClientConnection>) {
        self.method = method
        self.connection = connection
        deframer = GRPCMessageDeframer(maxMessageBytes: maxMessageBytes)
        let window = ResponseWindow(connection: connection)
        self.window = window
        inbound = InboundMessageQueue { window.consumed() }
    }

    // MARK: Caller side (any thread)

    func send(_ message: [UInt8]) async throws {
        let mustWait = try shared.withLock { shared in
            if let error = shared.closedError { throw error }
            shared.bufferedBytes += message.count + 5
            return shared.bufferedBytes > ServerCall.highWaterMark
        }
        connection.run(with: (self, message)) { $0.write($1.1, on: $1.0) }
        if mustWait {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome = shared.withLock { shared -> Result<Void, RPCError>? in
                    if let error = shared.closedError { return .failure(error) }
                    if shared.bufferedBytes <= ServerCall.lowWaterMark { return .success(()) }
                    shared.writerWaiter = continuation
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        }
    }

    func finishSending() async throws {
        connection.run(with: self) { $0.finishRequests(on: $1) }
    }

    func receive() async throws -> [UInt8]? {
        try await inbound.next()
    }

    func responseHeaders() async throws -> Metadata {
        try await withCheckedThrowingContinuation { continuation in
            let ready = shared.withLock { shared -> Result<Metadata, RPCError>? in
                if let headers = shared.headers { return .success(headers) }
                if let error = shared.closedError { return .failure(error) }
                shared.headersWaiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    func trailers() async throws -> Metadata {
        try await withCheckedThrowingContinuation { continuation in
            let ready = shared.withLock { shared -> Result<Metadata, RPCError>? in
                if let trailers = shared.trailers { return .success(trailers) }
                if let error = shared.closedError, error.code != .ok { return .failure(error) }
                shared.trailersWaiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    func cancel() {
        connection.run(with: self) { $0.cancel($1, with: RPCError(.cancelled, "call cancelled by the client")) }
    }

    // MARK: Event loop side

    /// Marks `count` request bytes as handed to nghttp2, waking a sender waiting for room.
    func released(_ count: Int) {
        let waiter = shared.withLock { shared -> CheckedContinuation<Void, any Error>? in
            shared.bufferedBytes -= count
            guard shared.bufferedBytes <= ServerCall.lowWaterMark else { return nil }
            defer { shared.writerWaiter = nil }
            return shared.writerWaiter
        }
        waiter?.resume()
    }

    /// Records the response headers and wakes those waiting for them.
    func deliverHeaders(_ headers: Metadata) {
        let waiters = shared.withLock { shared in
            shared.headers = headers
            defer { shared.headersWaiters = [] }
            return shared.headersWaiters
        }
        for waiter in waiters { waiter.resume(returning: headers) }
    }

    /// Ends the call: messages already received stay readable, then `error` (nil for OK) is reported.
    func end(trailers: Metadata, error: RPCError?) {
        guard !ended else { return }
        ended = true
        deadlineTimer?.cancel()
        deadlineTimer = nil
        let closedError = error ?? RPCError(.ok, "call finished")
        let (headerWaiters, trailerWaiters, writer, headers) = shared.withLock { shared in
            if shared.closedError == nil { shared.closedError = closedError }
            shared.trailers = trailers
            if shared.headers == nil { shared.headers = Metadata() }
            defer {
                shared.headersWaiters = []
                shared.trailersWaiters = []
                shared.writerWaiter = nil
            }
            return (shared.headersWaiters, shared.trailersWaiters, shared.writerWaiter, shared.headers!)
        }
        for waiter in headerWaiters { waiter.resume(returning: headers) }
        for waiter in trailerWaiters { waiter.resume(returning: trailers) }
        writer?.resume(throwing: closedError)
        if let error {
            inbound.finish(.failure(error))
        } else {
            inbound.finish(.success(()))
        }
    }

    /// Ends the call at once, dropping unread messages (cancellation, deadline, connection loss).
    func abort(_ error: RPCError) {
        end(trailers: Metadata(), error: error)
        inbound.fail(error)
    }
}

/// Reopens a stream's receive window as the caller reads responses, so a slow reader bounds memory.
final class ResponseWindow: Sendable {
    let connection: NIOLoopBound<ClientConnection>
    let streamID = Atomic<Int32>(0)

    init(connection: NIOLoopBound<ClientConnection>) {
        self.connection = connection
    }

    /// The caller took a buffered message: there may be room to reopen the window.
    func consumed() {
        let id = streamID.load(ordering: .relaxed)
        let connection = self.connection
        connection.eventLoop.execute { connection.value.repayWindow(streamID: id) }
    }
}
