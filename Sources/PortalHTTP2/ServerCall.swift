import NIOCore
import PortalRPC

/// One gRPC call on a server connection: its stream's state on the event loop, and the handler's
/// view of it (`ServerCallStream`) from its task.
///
/// A call whose method takes one request starts once that request is complete: the handler reads it
/// without waiting, and the call needs no queue. Streaming requests go through an
/// `InboundMessageQueue` that reopens the flow-control window as the handler keeps up. Fields marked
/// "event loop" are only touched there; `shared` is locked; the rest is set before the handler starts.
final class ServerCall: ServerCallStream, @unchecked Sendable {
    /// Response bytes buffered beyond this make a streaming handler wait (backpressure).
    static let highWaterMark = 256 << 10
    /// A waiting handler resumes once the buffer drains below this.
    static let lowWaterMark = 64 << 10

    let id: Int32
    let route: RPCRoute
    let context: ServerContext
    let connection: NIOLoopBound<ServerConnection>
    /// Requests of a streaming-request call; nil when the method takes one request.
    let inbound: InboundMessageQueue?

    private struct Shared {
        var bufferedBytes = 0
        var writerWaiter: CheckedContinuation<Void, any Error>?
        var finalResponse: [UInt8]?
        var closedError: RPCError?
    }

    private let shared = Locked(Shared())

    /// The request of a single-request call, complete before the handler runs; nil once it took it.
    private var request: [UInt8]?

    // Event loop state.
    var state = ServerStreamState()
    var deframer: GRPCMessageDeframer
    /// What of the peer's send window this stream still owes it (streaming requests).
    var receiveWindow = ReceiveWindow()
    var deadlineTimer: Scheduled<Void>?
    var task: Task<Void, Never>?

    init(
        id: Int32, route: RPCRoute, context: ServerContext, maxMessageBytes: Int,
        connection: NIOLoopBound<ServerConnection>
    ) {
        self.id = id
        self.route = route
        self.context = context
        self.connection = connection
        deframer = GRPCMessageDeframer(maxMessageBytes: maxMessageBytes)
        if route.method.kind.streamsRequests {
            // Taking a buffered request may make room to reopen the stream's receive window.
            inbound = InboundMessageQueue { [connection, id] in
                connection.eventLoop.execute { connection.value.repayWindow(streamID: id) }
            }
        } else {
            inbound = nil
        }
    }

    /// Whether the handler starts only once the request is complete (the method takes one request).
    var startsWhenRequestIsComplete: Bool { inbound == nil }

    // MARK: Event loop side

    /// Takes DATA bytes; returns how many bytes of window to reopen now.
    func receive(_ bytes: UnsafeRawBufferPointer) throws(RPCError) -> Int {
        guard let inbound else {
            var receivedAnother = false
            do {
                try deframer.append(bytes) { message in
                    if request == nil { request = message } else { receivedAnother = true }
                }
            } catch {
                throw error.error
            }
            if receivedAnother {
                throw RPCError(.invalidArgument, "request: expected one request message, received more")
            }
            return bytes.count
        }
        do {
            try deframer.append(bytes) { inbound.push($0) }
        } catch {
            throw error.error
        }
        return receiveWindow.received(bytes.count, buffered: inbound.bufferedBytes)
    }

    /// The peer finished sending: checks that no message was cut off.
    func requestEnded() throws(RPCError) {
        do {
            try deframer.finish()
        } catch {
            throw error.error
        }
        inbound?.finish(.success(()))
    }

    /// The window to reopen now that the handler took messages.
    func repayWindow() -> Int {
        guard let inbound else { return 0 }
        return receiveWindow.repay(buffered: inbound.bufferedBytes)
    }

    /// The handler's single response, taken once it returned.
    func takeFinalResponse() -> [UInt8]? {
        shared.withLock { shared in
            defer { shared.finalResponse = nil }
            return shared.finalResponse
        }
    }

    /// Marks `count` response bytes as written into frames, waking a writer waiting for room.
    func released(_ count: Int) {
        let waiter = shared.withLock { shared -> CheckedContinuation<Void, any Error>? in
            shared.bufferedBytes -= count
            guard shared.bufferedBytes <= Self.lowWaterMark else { return nil }
            defer { shared.writerWaiter = nil }
            return shared.writerWaiter
        }
        waiter?.resume()
    }

    /// Stops the handler: pending and future reads and writes fail with `error`, and its task is cancelled.
    func abort(_ error: RPCError) {
        deadlineTimer?.cancel()
        deadlineTimer = nil
        let waiter = shared.withLock { shared -> CheckedContinuation<Void, any Error>? in
            if shared.closedError == nil { shared.closedError = error }
            defer { shared.writerWaiter = nil }
            return shared.writerWaiter
        }
        waiter?.resume(throwing: error)
        inbound?.fail(error)
        task?.cancel()
        task = nil
    }

    // MARK: Handler side (its task)

    func nextRequest() async throws -> [UInt8]? {
        guard let inbound else { return takeCompleteRequest() }
        return try await inbound.next()
    }

    func takeCompleteRequest() -> [UInt8]? {
        guard inbound == nil else { return nil }
        defer { request = nil }
        return request
    }

    func sendOnlyResponse(_ message: [UInt8]) throws -> Bool {
        guard !route.method.kind.streamsResponses else { return false }
        try shared.withLock { shared in
            if let error = shared.closedError { throw error }
            guard shared.finalResponse == nil else {
                throw RPCError(.internal, "a unary method sent more than one response")
            }
            shared.finalResponse = message
        }
        return true
    }

    func sendResponse(_ message: [UInt8]) async throws {
        if try sendOnlyResponse(message) { return }
        let mustWait = try shared.withLock { shared in
            if let error = shared.closedError { throw error }
            shared.bufferedBytes += message.count + 5
            return shared.bufferedBytes > Self.highWaterMark
        }
        connection.run(with: (self, message)) { $0.write($1.1, on: $1.0) }
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

    /// Ends the call with `error` (nil for OK); called once when the handler returns.
    func handlerReturned(_ error: RPCError?) {
        connection.run(with: (self, error)) { $0.end($1.0, error: $1.1) }
    }
}
