import NIOCore
import PortalRPC

/// What a server connection needs from its server: routes, limits and where new calls go.
struct ServerConnectionConfiguration: Sendable {
    /// Routes by HTTP/2 `:path`.
    var routes: [String: RPCRoute]
    /// Names of the hosted services, to tell an unknown service from an unknown method.
    var services: Set<String>
    /// HTTP/2 settings and abuse limits.
    var limits: HTTP2Limits
    /// The largest request message accepted (and, on a web listener, the largest plain request body).
    var maxReceiveMessageBytes: Int
    /// On a web listener, what answers plain HTTP requests (anything not `application/grpc`); nil elsewhere.
    var web: WebRequestHandler?
}

/// Serves gRPC on one accepted connection: feeds socket bytes to nghttp2 and turns streams into calls.
///
/// Lives on the connection's event loop, like its session and streams.
final class HTTP2ServerConnectionHandler: ChannelInboundHandler, HTTP2SessionDelegate {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let configuration: ServerConnectionConfiguration
    private var session: NGHTTP2Session!
    private var context: ChannelHandlerContext?
    private var streams: [Int32: ServerStream] = [:]
    /// Plain HTTP requests of a web listener, by stream.
    private var exchanges: [Int32: HTTP2WebExchange] = [:]
    /// The request header block being received, and its stream (blocks never interleave).
    private var head: (streamID: Int32, fields: RequestHead)?
    private var flushScheduled = false
    private var closing = false
    private var peer = "unknown"
    private var resetBudget: TokenBucket
    private var outputClosed = false

    private let calls: AsyncStream<ServerStream>.Continuation
    private let transport: TransportSecurity
    private var requestIDs = RequestID.Generator()

    /// Creates the handler for a connection secured as `transport`; every call it starts goes to
    /// `calls`, which it finishes when the connection closes.
    init(configuration: ServerConnectionConfiguration, transport: TransportSecurity, calls: AsyncStream<ServerStream>.Continuation) {
        self.configuration = configuration
        self.transport = transport
        self.calls = calls
        resetBudget = TokenBucket(capacity: Double(configuration.limits.streamResetBurst), perSecond: Double(configuration.limits.streamResetRate))
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        session = NGHTTP2Session(role: .server, limits: configuration.limits, delegate: self)
        peer = context.remoteAddress?.description ?? "unknown"
        if context.channel.isActive { flushNow() }
    }

    /// Drops the context, which holds this handler: keeping it would keep the connection alive forever.
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        flushNow()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let accepted = buffer.withUnsafeReadableBytes { session.receive($0) }
        if !accepted {
            flushNow()
            closeAfterFlushing()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushNow()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { flushNow() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        for stream in streams.values {
            stream.closed = true
            stream.abort(RPCError(.cancelled, "connection closed"))
        }
        streams.removeAll()
        for exchange in exchanges.values { exchange.close() }
        exchanges.removeAll()
        head = nil
        calls.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closeConnection()
    }

    // MARK: Graceful shutdown

    /// Announces shutdown with GOAWAY; in-flight calls finish, then the connection closes.
    func beginGracefulShutdown() {
        guard !closing else { return }
        closing = true
        session.submitShutdownNotice()
        session.submitGoAway()
        flushNow()
        closeIfIdle()
    }

    /// Closes the connection now, cancelling every call on it.
    func closeConnection() {
        context?.close(promise: nil)
    }

    /// Once shutting down and without calls, sends what is queued (the GOAWAY) and closes.
    ///
    /// Deferred to a later event-loop turn: this runs inside nghttp2 callbacks, which must not re-enter it.
    private func closeIfIdle() {
        guard closing, streams.isEmpty, exchanges.isEmpty, let context else { return }
        context.eventLoop.assumeIsolated().execute {
            guard self.streams.isEmpty, self.exchanges.isEmpty else { return }
            self.flushNow()
            self.closeAfterFlushing()
        }
    }

    // MARK: Output

    private func flushSoon() {
        guard !flushScheduled, let context else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            self.flushNow()
        }
    }

    private func flushNow() {
        guard let context, !outputClosed, context.channel.isActive, context.channel.isWritable else { return }
        var buffer = context.channel.allocator.buffer(capacity: 16 << 10)
        let healthy = session.drainOutput(into: &buffer)
        if buffer.readableBytes > 0 {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
        if !healthy || !session.isAlive {
            closeAfterFlushing()
        }
    }

    /// Half-closes so the peer reads our last frames (GOAWAY) before the socket goes, then closes.
    ///
    /// Closing at once with unread input makes the kernel send a TCP reset, which can overtake the GOAWAY.
    private func closeAfterFlushing() {
        guard let context, !outputClosed else { return }
        outputClosed = true
        context.close(mode: .output, promise: nil)
        context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) { self.closeConnection() }
    }

    // MARK: Calls

    /// Returns the window a stream owes once its handler has caught up with buffered requests.
    func repayWindow(streamID: Int32) {
        guard let stream = streams[streamID] else { return }
        let count = stream.repayWindow()
        guard count > 0 else { return }
        session.consumeStream(streamID: streamID, count: count)
        flushSoon()
    }

    /// Queues a response message of a streaming call.
    func write(_ message: [UInt8], on stream: ServerStream) {
        guard !stream.closed, !stream.finished else {
            stream.released(message.count + 5)
            return
        }
        stream.outbound.append(message)
        if stream.headersSent {
            session.resumeBody(streamID: stream.id)
        } else {
            sendResponseHeaders(stream)
        }
        flushSoon()
    }

    /// Ends a call: sends the final message (unary) and the trailers, or a trailers-only response.
    func finish(_ stream: ServerStream, finalResponse: [UInt8]?, error: RPCError?) {
        guard !stream.finished, !stream.closed else { return }
        stream.finished = true
        stream.deadlineTimer?.cancel()
        stream.deadlineTimer = nil
        let trailers = GRPCStatusHeaders.trailers(for: error, metadata: error == nil ? stream.context.responseTrailers : [:])
        if let finalResponse {
            stream.outbound.append(finalResponse)
        }
        if stream.headersSent {
            stream.pendingTrailers = trailers
            session.resumeBody(streamID: stream.id)
        } else if stream.outbound.count == 0 {
            var fields = [(":status", "200"), ("content-type", "application/grpc"), ("x-request-id", stream.context.requestID)]
            fields += HTTP2Metadata.headerFields(stream.context.responseHeaders)
            session.submitResponse(streamID: stream.id, headers: fields + trailers, hasBody: false)
            stream.headersSent = true
        } else {
            stream.pendingTrailers = trailers
            sendResponseHeaders(stream)
        }
        flushSoon()
    }

    /// Ends a call from the transport side (deadline, bad input) and stops its handler.
    private func terminate(_ stream: ServerStream, with error: RPCError) {
        finish(stream, finalResponse: nil, error: error)
        stream.abort(error)
    }

    private func sendResponseHeaders(_ stream: ServerStream) {
        var fields = [
            (":status", "200"), ("content-type", "application/grpc"), ("grpc-accept-encoding", "identity"),
            ("x-request-id", stream.context.requestID),
        ]
        fields += HTTP2Metadata.headerFields(stream.context.responseHeaders)
        session.submitResponse(streamID: stream.id, headers: fields, hasBody: true)
        stream.headersSent = true
    }

    private func refuse(streamID: Int32, requestID: String, error: RPCError, extra: [(String, String)] = []) {
        var fields = [(":status", "200"), ("content-type", "application/grpc"), ("x-request-id", requestID)] + extra
        fields += GRPCStatusHeaders.trailers(for: error, metadata: [:])
        session.submitResponse(streamID: streamID, headers: fields, hasBody: false)
    }

    private func startCall(streamID: Int32, head: RequestHead, endStream: Bool) {
        if configuration.web != nil, !head.isGRPC {
            let exchange = HTTP2WebExchange(id: streamID, head: head)
            exchanges[streamID] = exchange
            if endStream { launchWeb(exchange) }
            return
        }
        let requestID = head.requestID.flatMap(RequestID.accepting) ?? requestIDs.next()
        guard head.isPost else {
            session.submitResponse(streamID: streamID, headers: [(":status", "405")], hasBody: false)
            return
        }
        guard head.isGRPC else {
            session.submitResponse(streamID: streamID, headers: [(":status", "415")], hasBody: false)
            return
        }
        if let encoding = head.encoding, encoding != "identity" {
            refuse(streamID: streamID, requestID: requestID, error: RPCError(.unimplemented, "grpc-encoding \(encoding) is not supported"),
                   extra: [("grpc-accept-encoding", "identity")])
            return
        }
        let path = head.path
        guard let route = configuration.routes[path] else {
            let service = path.split(separator: "/").first.map(String.init) ?? ""
            let message = configuration.services.contains(service) ? "unknown method \(path)" : "unknown service \(service)"
            refuse(streamID: streamID, requestID: requestID, error: RPCError(.unimplemented, message))
            return
        }
        var deadline: ContinuousClock.Instant?
        if let timeoutText = head.timeout {
            guard let timeout = GRPCTimeout.parse(timeoutText) else {
                refuse(streamID: streamID, requestID: requestID, error: .invalidArgument(field: "grpc-timeout", "malformed value \(timeoutText)"))
                return
            }
            deadline = .now + timeout
        }
        let context = ServerContext(
            method: route.method, requestMetadata: head.metadata, deadline: deadline, peer: peer,
            requestID: requestID, transport: transport)
        let stream = ServerStream(
            id: streamID, route: route, context: context, maxMessageBytes: configuration.maxReceiveMessageBytes,
            connection: self, eventLoop: self.context!.eventLoop)
        streams[streamID] = stream
        if endStream { stream.inbound.finish(.success(())) }
        if let deadline {
            stream.deadlineTimer = self.context!.eventLoop.assumeIsolated().scheduleTask(in: (deadline - .now).timeAmount) { [self] in
                guard streams[streamID] === stream else { return }
                terminate(stream, with: RPCError(.deadlineExceeded, "deadline exceeded"))
            }
        }
        calls.yield(stream)
    }

    // MARK: HTTP2SessionDelegate

    func sessionBeganHeaders(streamID: Int32) {
        head = streams[streamID] == nil && exchanges[streamID] == nil ? (streamID, RequestHead(keepingFields: configuration.web != nil)) : nil
    }

    func sessionReceivedHeader(streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
        guard head?.streamID == streamID else { return true }  // trailers from a client: ignored
        head!.fields.add(name: name, value: value)
        guard head!.fields.size <= Int(configuration.limits.maxHeaderListSize) else {
            head = nil
            return false
        }
        return true
    }

    func sessionReceivedHeaders(streamID: Int32, endStream: Bool) {
        if let head, head.streamID == streamID {
            self.head = nil
            if closing {
                session.resetStream(streamID: streamID, errorCode: 7)  // REFUSED_STREAM
                return
            }
            startCall(streamID: streamID, head: head.fields, endStream: endStream)
        } else if endStream, streams[streamID] != nil || exchanges[streamID] != nil {
            sessionReceivedEndOfData(streamID: streamID)
        }
    }

    func sessionReceivedData(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        session.consumeConnection(count: bytes.count)
        if let exchange = exchanges[streamID] {
            session.consumeStream(streamID: streamID, count: bytes.count)
            receiveWebBody(exchange, bytes)
            return
        }
        guard let stream = streams[streamID], !stream.finished else {
            // Data for a call that already ended is discarded, but its window is returned.
            session.consumeStream(streamID: streamID, count: bytes.count)
            return
        }
        do {
            session.consumeStream(streamID: streamID, count: try stream.receive(bytes))
        } catch {
            session.consumeStream(streamID: streamID, count: bytes.count)
            terminate(stream, with: error.error)
        }
    }

    func sessionReceivedEndOfData(streamID: Int32) {
        if let exchange = exchanges[streamID] {
            launchWeb(exchange)
            return
        }
        guard let stream = streams[streamID], !stream.finished else { return }
        do {
            try stream.deframer.finish()
            stream.inbound.finish(.success(()))
        } catch {
            terminate(stream, with: error.error)
        }
    }

    func sessionClosedStream(streamID: Int32, errorCode: UInt32) {
        if head?.streamID == streamID { head = nil }
        if let exchange = exchanges.removeValue(forKey: streamID) {
            exchange.close()
            closeIfIdle()
            return
        }
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        stream.closed = true
        stream.abort(RPCError(.cancelled, stream.finished ? "call finished" : "call cancelled by the client"))
        closeIfIdle()
    }

    /// Counts client resets; a rapid-reset flood gets GOAWAY(ENHANCE_YOUR_CALM) and a closed connection.
    func sessionReceivedReset(streamID: Int32) {
        guard !resetBudget.take(now: .now), !closing, let context else { return }
        closing = true
        session.submitGoAway(errorCode: 11)  // ENHANCE_YOUR_CALM
        context.eventLoop.assumeIsolated().execute { self.flushNow() }
    }

    func sessionReceivedGoAway(lastStreamID: Int32, errorCode: UInt32) {
        closing = true
        closeIfIdle()
    }

    func sessionReadBody(streamID: Int32, into buffer: UnsafeMutableRawBufferPointer) -> HTTP2BodyRead {
        if let exchange = exchanges[streamID] { return readWebBody(exchange, into: buffer) }
        guard let stream = streams[streamID] else { return .endWithTrailers(0, []) }
        let count = stream.outbound.read(into: buffer)
        if count > 0 {
            if stream.route.method.kind.streamsResponses { stream.released(count) }
        }
        if stream.outbound.count == 0, let trailers = stream.pendingTrailers {
            stream.pendingTrailers = nil
            return .endWithTrailers(count, trailers)
        }
        return count > 0 ? .bytes(count) : .deferred
    }
}

/// A token bucket: `capacity` events at once, refilled at `perSecond`.
struct TokenBucket {
    private let capacity: Double
    private let perSecond: Double
    private var tokens: Double
    private var last: ContinuousClock.Instant = .now

    init(capacity: Double, perSecond: Double) {
        self.capacity = capacity
        self.perSecond = perSecond
        tokens = capacity
    }

    /// Takes one token; false when the bucket is empty.
    mutating func take(now: ContinuousClock.Instant) -> Bool {
        let (seconds, attoseconds) = (now - last).components
        tokens = min(capacity, tokens + (Double(seconds) + Double(attoseconds) / 1e18) * perSecond)
        last = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}

// MARK: Plain HTTP requests on a web listener

extension HTTP2ServerConnectionHandler {
    /// Takes body bytes of a plain request, answering 413 once they pass the limit.
    private func receiveWebBody(_ exchange: HTTP2WebExchange, _ bytes: UnsafeRawBufferPointer) {
        guard !exchange.refused, exchange.task == nil else { return }
        guard exchange.body.count + bytes.count <= configuration.maxReceiveMessageBytes else {
            exchange.refused = true
            exchange.body = []
            let text = Array("the request body is larger than \(configuration.maxReceiveMessageBytes) bytes\n".utf8)
            startWebResponse(streamID: exchange.id, status: 413, headers: [("content-type", "text/plain; charset=utf-8")], body: text, ends: true)
            return
        }
        exchange.body.append(contentsOf: bytes)
    }

    /// Hands a complete plain request to the web application, in a task of its own.
    fileprivate func launchWeb(_ exchange: HTTP2WebExchange) {
        guard !exchange.refused, exchange.task == nil, let web = configuration.web, let context else { return }
        let request = exchange.request(peer: peer, transport: transport)
        exchange.body = []
        let responder = HTTP2WebResponder(connection: NIOLoopBound(self, eventLoop: context.eventLoop), streamID: exchange.id)
        exchange.task = Task {
            await web(request, responder)
            await responder.ensureEnded()
        }
    }

    /// Sends a plain response's headers, and its whole body when `ends`; a streamed body follows part by part.
    func startWebResponse(streamID: Int32, status: Int, headers: [(String, String)], body: [UInt8], ends: Bool) {
        guard let exchange = exchanges[streamID], !exchange.closed, !exchange.responseStarted else { return }
        exchange.responseStarted = true
        exchange.responseEnded = ends
        exchange.outbound.append(body)
        // HTTP/2 carries no connection-specific fields.
        let fields = [(":status", String(status))] + headers.filter { !["connection", "keep-alive", "transfer-encoding"].contains($0.0) }
        session.submitResponse(streamID: streamID, headers: fields, hasBody: !(ends && body.isEmpty))
        flushSoon()
    }

    /// Queues one part of a streamed plain response; `waiter` resumes once it has been sent.
    func writeWebPart(streamID: Int32, _ part: [UInt8], waiter: CheckedContinuation<Void, any Error>) {
        guard let exchange = exchanges[streamID], !exchange.closed, exchange.responseStarted, !exchange.responseEnded else {
            waiter.resume(throwing: RPCError(.cancelled, "the client closed the stream"))
            return
        }
        exchange.outbound.append(part)
        exchange.drainWaiter = waiter
        session.resumeBody(streamID: streamID)
        flushSoon()
    }

    /// Ends a streamed plain response once its queued parts are sent.
    func finishWebResponse(streamID: Int32) {
        guard let exchange = exchanges[streamID], !exchange.closed else { return }
        exchange.responseEnded = true
        session.resumeBody(streamID: streamID)
        flushSoon()
    }

    /// Breaks off a plain response with RST_STREAM(CANCEL), so the client sees it incomplete.
    func abortWebResponse(streamID: Int32) {
        guard let exchange = exchanges[streamID], !exchange.closed else { return }
        session.resetStream(streamID: streamID, errorCode: 8)
        flushSoon()
    }

    fileprivate func readWebBody(_ exchange: HTTP2WebExchange, into buffer: UnsafeMutableRawBufferPointer) -> HTTP2BodyRead {
        let count = exchange.outbound.read(into: buffer)
        if exchange.outbound.count == 0 {
            exchange.drainWaiter?.resume()
            exchange.drainWaiter = nil
            if exchange.responseEnded { return .endWithTrailers(count, []) }
        }
        return count > 0 ? .bytes(count) : .deferred
    }
}

/// Installs HTTP/2 for plain HTTP requests on a web listener's connection (h2 inside TLS, or h2c).
public enum HTTP2WebConnection {
    /// Adds the HTTP/2 handler to `channel` (on its event loop): every request goes to `handler`;
    /// bodies over `maxBodyBytes` are answered 413.
    public static func install(
        on channel: any Channel, transport: TransportSecurity, limits: HTTP2Limits = HTTP2Limits(), maxBodyBytes: Int,
        handler: @escaping WebRequestHandler
    ) throws {
        let configuration = ServerConnectionConfiguration(
            routes: [:], services: [], limits: limits, maxReceiveMessageBytes: maxBodyBytes, web: handler)
        let (_, calls) = AsyncStream.makeStream(of: ServerStream.self)
        try channel.pipeline.syncOperations.addHandler(HTTP2ServerConnectionHandler(configuration: configuration, transport: transport, calls: calls))
    }
}
