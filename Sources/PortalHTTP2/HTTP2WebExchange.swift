import NIOCore
import PortalRPC

/// One plain HTTP request on an HTTP/2 connection of a web listener: its body as it arrives, then its
/// response as the application writes it. Touched only on the connection's event loop.
final class HTTP2WebExchange {
    let id: Int32
    let head: RequestHead
    var body: [UInt8] = []
    /// Over a limit and already answered: the rest of the body is dropped.
    var refused = false
    var responseStarted = false
    /// Every part is queued; the stream ends once they are sent.
    var responseEnded = false
    var closed = false
    var task: Task<Void, Never>?
    /// A writer waiting for its part to be sent (one part in flight per stream).
    var drainWaiter: CheckedContinuation<Void, any Error>?

    init(id: Int32, head: RequestHead) {
        self.id = id
        self.head = head
    }

    /// The request, once its body is complete.
    func request(peer: String, transport: TransportSecurity) -> WebRequest {
        var headers = head.fields ?? []
        if !head.authority.isEmpty, !headers.contains(where: { $0.0 == "host" }) {
            headers.append(("host", head.authority))
        }
        return WebRequest(
            method: head.method, target: head.path, headers: headers.map { (name: $0.0, value: $0.1) }, body: body,
            peer: peer, transport: transport)
    }

    /// Body bytes went into frames and `queued` are left: a writer waiting for its part resumes once none are.
    func sent(queued: Int) {
        guard queued == 0 else { return }
        drainWaiter?.resume()
        drainWaiter = nil
    }

    /// Fails a waiting writer: the stream is gone.
    func close() {
        closed = true
        task?.cancel()
        drainWaiter?.resume(throwing: RPCError(.cancelled, "the client closed the stream"))
        drainWaiter = nil
    }
}

/// Writes one plain response on an HTTP/2 stream from any task, hopping to the connection's event loop.
final class HTTP2WebResponder: WebResponder, Sendable {
    private let connection: NIOLoopBound<ServerConnection>
    private let streamID: Int32
    private let progress = ResponseProgress()

    init(connection: NIOLoopBound<ServerConnection>, streamID: Int32) {
        self.connection = connection
        self.streamID = streamID
    }

    private func onLoop(_ body: @escaping @Sendable (ServerConnection) -> Void) {
        let connection = connection
        connection.eventLoop.execute { body(connection.value) }
    }

    func respond(status: Int, headers: [(String, String)], body: [UInt8]) async {
        guard progress.beginWhole() else { return }
        let streamID = streamID
        onLoop { $0.startWebResponse(streamID: streamID, status: status, headers: headers, body: body, ends: true) }
    }

    func startStream(status: Int, headers: [(String, String)]) async throws {
        try progress.beginStream()
        let streamID = streamID
        onLoop { $0.startWebResponse(streamID: streamID, status: status, headers: headers, body: [], ends: false) }
    }

    func write(_ part: [UInt8]) async throws {
        try progress.requireStream()
        guard !part.isEmpty else { return }
        let streamID = streamID
        let connection = connection
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            connection.eventLoop.execute {
                connection.value.writeWebPart(streamID: streamID, part, waiter: continuation)
            }
        }
    }

    func finishStream() async {
        guard progress.endStream() else { return }
        let streamID = streamID
        onLoop { $0.finishWebResponse(streamID: streamID) }
    }

    func abortStream() async {
        progress.abandon()
        let streamID = streamID
        onLoop { $0.abortWebResponse(streamID: streamID) }
    }

    /// Ends a response the application left open, so the stream is never stuck.
    func ensureEnded() async {
        await progress.ensureEnded(self)
    }
}
