import NIOCore
import PortalRPC

/// What a server connection needs from its server: routes, limits, and how calls run.
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
    /// Runs each call's interceptors and handler; counts calls in flight for the server's shutdown.
    var launcher: ServerCallLauncher?
    /// How long the peer has to answer the shutdown PING before the final GOAWAY goes out anyway.
    var shutdownPingTimeout: TimeAmount = .seconds(1)
}

/// Serves gRPC (and, on a web listener, plain HTTP requests) on one accepted HTTP/2 connection:
/// turns the session's events into calls and the calls' progress into frames.
///
/// Lives on the connection's event loop, like its session and calls; its busiest state is
/// `@exclusivity(unchecked)` for the reason `NGHTTP2Session` gives.
final class ServerConnection: ChannelInboundHandler, HTTP2ConnectionPump {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let session: NGHTTP2Session
    @exclusivity(unchecked) var pump = HTTP2PumpState()

    private let configuration: ServerConnectionConfiguration
    private let transport: TransportSecurity
    @exclusivity(unchecked) private var lifecycle: ConnectionLifecycle
    @exclusivity(unchecked) private var calls = StreamTable<ServerCall>()
    /// Plain HTTP requests of a web listener, by stream.
    @exclusivity(unchecked) private var exchanges = StreamTable<HTTP2WebExchange>()
    private var peer = "unknown"
    @exclusivity(unchecked) private var requestIDs = RequestID.Generator()
    private var executor: EventLoopTaskExecutor?

    /// Creates the connection for a channel secured as `transport`.
    init(configuration: ServerConnectionConfiguration, transport: TransportSecurity) {
        self.configuration = configuration
        self.transport = transport
        session = NGHTTP2Session(role: .server, limits: configuration.limits)
        lifecycle = ConnectionLifecycle(
            resetBurst: configuration.limits.streamResetBurst, resetRate: configuration.limits.streamResetRate)
    }

    private var openStreams: Int { calls.count + exchanges.count }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        executor = EventLoopTaskExecutor(eventLoop: context.eventLoop)
        peer = context.remoteAddress?.description ?? "unknown"
        attach(context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        detach()
    }

    func channelActive(context: ChannelHandlerContext) {
        channelCanWrite(context, becameActive: true)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !pumpInput(unwrapInboundIn(data)) {
            perform(lifecycle.protocolError())
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inputComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        channelCanWrite(context, becameActive: false)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let open = calls.values
        calls.removeAll()
        for call in open {
            _ = call.state.streamClosed()
            call.abort(RPCError(.cancelled, "connection closed"))
        }
        for exchange in exchanges.values { exchange.close() }
        exchanges.removeAll()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closeNow()
    }

    // MARK: Lifecycle

    /// Announces shutdown (GOAWAY, PING, then the final GOAWAY); calls in flight finish, then the connection closes.
    func beginGracefulShutdown() {
        perform(lifecycle.beginGracefulShutdown())
    }

    /// Closes the connection now, cancelling every call on it.
    func closeConnection() {
        closeNow()
    }

    private func perform(_ action: ConnectionLifecycle.Action) {
        switch action {
        case .none:
            return
        case .announceShutdown:
            session.submitShutdownNotice()
            session.submitPing()
            pump.context?.eventLoop.assumeIsolated().scheduleTask(in: configuration.shutdownPingTimeout) {
                self.perform(self.lifecycle.shutdownPingAnswered(openStreams: self.openStreams))
            }
            flushSoon()
        case .goAway(let errorCode):
            session.submitGoAway(errorCode: errorCode)
            flushSoon()
        case .goAwayAndClose(let errorCode):
            session.submitGoAway(errorCode: errorCode)
            closeAfterFlushing()
        case .close:
            closeAfterFlushing()
        }
    }

    // MARK: Session events

    func handle(_ event: HTTP2Event) {
        switch event {
        case .headers(let streamID, let fields, let endStream):
            if calls[streamID] != nil || exchanges[streamID] != nil {
                if endStream { requestEnded(streamID: streamID) }  // trailers from the client: only their END_STREAM counts
                return
            }
            guard lifecycle.acceptsStreams else {
                session.resetStream(streamID: streamID, errorCode: 7)  // REFUSED_STREAM
                return
            }
            var head = RequestHead(keepingFields: configuration.web != nil)
            session.forEachHeaderField(in: fields) { head.add(name: $0, value: $1) }
            startStream(streamID: streamID, head: head, endStream: endStream)
        case .data(let streamID, let bytes):
            session.withData(bytes) { received(streamID: streamID, bytes: $0) }
        case .endOfData(let streamID):
            requestEnded(streamID: streamID)
        case .closed(let streamID, _):
            streamClosed(streamID)
        case .reset:
            perform(lifecycle.peerReset(now: .now))
        case .goAway:
            perform(lifecycle.peerWentAway(openStreams: openStreams))
        case .pingAcknowledged:
            perform(lifecycle.shutdownPingAnswered(openStreams: openStreams))
        case .sent(let streamID, let count):
            if let call = calls[streamID] {
                call.released(count)
            } else if let exchange = exchanges[streamID] {
                exchange.sent(queued: session.queuedBodyBytes(on: streamID))
            }
        }
    }

    private func received(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        if let exchange = exchanges[streamID] {
            session.consumeStream(streamID: streamID, count: bytes.count)
            receiveWebBody(exchange, bytes)
            return
        }
        guard let call = calls[streamID], call.state.takesRequestData else {
            // Data for a call that already ended is discarded, but its window is returned.
            session.consumeStream(streamID: streamID, count: bytes.count)
            return
        }
        do {
            session.consumeStream(streamID: streamID, count: try call.receive(bytes))
        } catch {
            session.consumeStream(streamID: streamID, count: bytes.count)
            terminate(call, with: error)
        }
    }

    private func requestEnded(streamID: Int32) {
        if let exchange = exchanges[streamID] {
            launchWeb(exchange)
            return
        }
        guard let call = calls[streamID], call.state.takesRequestData, call.state.requestEnded() else { return }
        do {
            try call.requestEnded()
            if call.startsWhenRequestIsComplete { launch(call) }
        } catch {
            terminate(call, with: error)
        }
    }

    /// What a call's pending reads and writes fail with once its stream has closed (made once:
    /// every call's stream closes).
    private static let finished = RPCError(.cancelled, "call finished")
    private static let cancelledByClient = RPCError(.cancelled, "call cancelled by the client")

    private func streamClosed(_ streamID: Int32) {
        if let exchange = exchanges.removeValue(forKey: streamID) {
            exchange.close()
        } else if let call = calls.removeValue(forKey: streamID) {
            let cancelled = call.state.streamClosed()
            call.abort(cancelled ? Self.cancelledByClient : Self.finished)
        } else {
            return
        }
        perform(lifecycle.streamEnded(openStreams: openStreams))
    }

    // MARK: Calls

    private func startStream(streamID: Int32, head: RequestHead, endStream: Bool) {
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
            refuse(
                streamID: streamID, requestID: requestID,
                error: RPCError(.unimplemented, "grpc-encoding \(encoding) is not supported"),
                extra: [("grpc-accept-encoding", "identity")])
            return
        }
        let path = head.path
        guard let route = configuration.routes[path] else {
            let service = path.split(separator: "/").first.map(String.init) ?? ""
            let message =
                configuration.services.contains(service) ? "unknown method \(path)" : "unknown service \(service)"
            refuse(streamID: streamID, requestID: requestID, error: RPCError(.unimplemented, message))
            return
        }
        var deadline: ContinuousClock.Instant?
        if let timeoutText = head.timeout {
            guard let timeout = GRPCTimeout.parse(timeoutText) else {
                refuse(
                    streamID: streamID, requestID: requestID,
                    error: .invalidArgument(field: "grpc-timeout", "malformed value \(timeoutText)"))
                return
            }
            deadline = .now + timeout
        }
        guard let context = pump.context else { return }
        let callContext = ServerContext(
            method: route.method, requestMetadata: head.metadata, deadline: deadline, peer: peer, requestID: requestID,
            transport: transport)
        let call = ServerCall(
            id: streamID, route: route, context: callContext, maxMessageBytes: configuration.maxReceiveMessageBytes,
            connection: NIOLoopBound(self, eventLoop: context.eventLoop))
        calls[streamID] = call
        if let deadline {
            call.deadlineTimer = context.eventLoop.assumeIsolated().scheduleTask(in: (deadline - .now).timeAmount) {
                [self] in
                guard calls[streamID] === call else { return }
                terminate(call, with: RPCError(.deadlineExceeded, "deadline exceeded"))
            }
        }
        if endStream {
            requestEnded(streamID: streamID)
        } else if !call.startsWhenRequestIsComplete {
            launch(call)
        }
    }

    /// Starts the call's handler in a task of its own, on this connection's event loop.
    private func launch(_ call: ServerCall) {
        guard let launcher = configuration.launcher, let executor else {
            terminate(call, with: RPCError(.unavailable, "the server is not taking calls"))
            return
        }
        call.task = launcher.launch(call, on: executor)
    }

    /// Returns the window a stream owes once its handler has caught up with buffered requests.
    func repayWindow(streamID: Int32) {
        guard let call = calls[streamID] else { return }
        let count = call.repayWindow()
        guard count > 0 else { return }
        session.consumeStream(streamID: streamID, count: count)
        flushSoon()
    }

    /// Queues a response message of a streaming call.
    func write(_ message: [UInt8], on call: ServerCall) {
        switch call.state.responseMessage() {
        case .drop:
            call.released(message.count + 5)
            return
        case .sendHeadersAndMessage:
            sendResponseHeaders(call)
        case .sendMessage:
            break
        }
        session.enqueue(message, framed: true, on: call.id)
        flushSoon()
    }

    /// Ends a call: sends the handler's single response (if any) and the trailers, or a trailers-only response.
    func end(_ call: ServerCall, error: RPCError?) {
        let finalResponse = call.takeFinalResponse()
        let response = error == nil ? finalResponse : nil
        let queued = session.queuedBodyBytes(on: call.id) > 0
        let action = call.state.end(hasMessages: response != nil || queued)
        guard action != .none else { return }
        call.deadlineTimer?.cancel()
        call.deadlineTimer = nil
        let trailers = GRPCStatusHeaders.trailers(
            for: error, metadata: error == nil ? call.context.responseTrailers : [:])
        switch action {
        case .trailersOnly:
            var fields = [
                (":status", "200"), ("content-type", "application/grpc"), ("x-request-id", call.context.requestID),
            ]
            fields += HTTP2Metadata.headerFields(call.context.responseHeaders)
            session.submitResponse(streamID: call.id, headers: fields + trailers, hasBody: false)
        case .headersMessagesAndTrailers:
            sendResponseHeaders(call)
            fallthrough
        case .messagesAndTrailers:
            if let response { session.enqueue(response, framed: true, on: call.id) }
            session.endBody(on: call.id, trailers: trailers)
        case .none:
            return
        }
        flushSoon()
    }

    /// Ends a call from the transport side (deadline, bad input) and stops its handler.
    private func terminate(_ call: ServerCall, with error: RPCError) {
        end(call, error: error)
        call.abort(error)
    }

    private func sendResponseHeaders(_ call: ServerCall) {
        var fields = [
            (":status", "200"), ("content-type", "application/grpc"), ("grpc-accept-encoding", "identity"),
            ("x-request-id", call.context.requestID),
        ]
        fields += HTTP2Metadata.headerFields(call.context.responseHeaders)
        session.submitResponse(
            streamID: call.id, headers: fields, hasBody: true, reportsProgress: call.route.method.kind.streamsResponses)
    }

    private func refuse(streamID: Int32, requestID: String, error: RPCError, extra: [(String, String)] = []) {
        var fields = [(":status", "200"), ("content-type", "application/grpc"), ("x-request-id", requestID)] + extra
        fields += GRPCStatusHeaders.trailers(for: error, metadata: [:])
        session.submitResponse(streamID: streamID, headers: fields, hasBody: false)
    }
}

// MARK: Plain HTTP requests on a web listener

extension ServerConnection {
    /// Takes body bytes of a plain request, answering 413 once they pass the limit.
    private func receiveWebBody(_ exchange: HTTP2WebExchange, _ bytes: UnsafeRawBufferPointer) {
        guard !exchange.refused, exchange.task == nil else { return }
        guard exchange.body.count + bytes.count <= configuration.maxReceiveMessageBytes else {
            exchange.refused = true
            exchange.body = []
            let text = Array("the request body is larger than \(configuration.maxReceiveMessageBytes) bytes\n".utf8)
            startWebResponse(
                streamID: exchange.id, status: 413, headers: [("content-type", "text/plain; charset=utf-8")],
                body: text, ends: true)
            return
        }
        exchange.body.append(contentsOf: bytes)
    }

    /// Hands a complete plain request to the web application, in a task of its own.
    fileprivate func launchWeb(_ exchange: HTTP2WebExchange) {
        guard !exchange.refused, exchange.task == nil, let web = configuration.web, let context = pump.context else {
            return
        }
        let request = exchange.request(peer: peer, transport: transport)
        exchange.body = []
        let responder = HTTP2WebResponder(
            connection: NIOLoopBound(self, eventLoop: context.eventLoop), streamID: exchange.id)
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
        // HTTP/2 carries no connection-specific fields.
        let fields =
            [(":status", String(status))]
            + headers.filter { !["connection", "keep-alive", "transfer-encoding"].contains($0.0) }
        let hasBody = !(ends && body.isEmpty)
        if hasBody {
            session.enqueue(body, framed: false, on: streamID)
            if ends { session.endBody(on: streamID) }
        }
        session.submitResponse(streamID: streamID, headers: fields, hasBody: hasBody, reportsProgress: true)
        flushSoon()
    }

    /// Queues one part of a streamed plain response; `waiter` resumes once it has been sent.
    func writeWebPart(streamID: Int32, _ part: [UInt8], waiter: CheckedContinuation<Void, any Error>) {
        guard let exchange = exchanges[streamID], !exchange.closed, exchange.responseStarted, !exchange.responseEnded
        else {
            waiter.resume(throwing: RPCError(.cancelled, "the client closed the stream"))
            return
        }
        exchange.drainWaiter = waiter
        session.enqueue(part, framed: false, on: streamID)
        flushSoon()
    }

    /// Ends a streamed plain response once its queued parts are sent.
    func finishWebResponse(streamID: Int32) {
        guard let exchange = exchanges[streamID], !exchange.closed else { return }
        exchange.responseEnded = true
        session.endBody(on: streamID)
        flushSoon()
    }

    /// Breaks off a plain response with RST_STREAM(CANCEL), so the client sees it incomplete.
    func abortWebResponse(streamID: Int32) {
        guard let exchange = exchanges[streamID], !exchange.closed else { return }
        session.resetStream(streamID: streamID, errorCode: 8)
        flushSoon()
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
        try channel.pipeline.syncOperations.addHandler(
            ServerConnection(configuration: configuration, transport: transport))
    }
}
