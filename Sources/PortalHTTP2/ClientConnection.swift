import NIOCore
import PortalRPC

/// Runs client calls over one HTTP/2 connection: requests out, responses and trailers in.
///
/// Lives on the connection's event loop, like its session and streams; its busiest state is
/// `@exclusivity(unchecked)` for the reason `NGHTTP2Session` gives.
final class ClientConnection: ChannelInboundHandler, HTTP2ConnectionPump {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let session: NGHTTP2Session
    @exclusivity(unchecked) var pump = HTTP2PumpState()

    private let authority: String
    private let scheme: String
    private let onUnusable: @Sendable () -> Void
    @exclusivity(unchecked) private var streams = StreamTable<ClientStream>()
    private(set) var isUsable = true

    /// Creates a connection (`secure` over TLS); `onUnusable` runs once when it stops taking new calls.
    init(authority: String, secure: Bool, limits: HTTP2Limits, onUnusable: @escaping @Sendable () -> Void) {
        self.authority = authority
        self.scheme = secure ? "https" : "http"
        self.onUnusable = onUnusable
        session = NGHTTP2Session(role: .client, limits: limits)
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
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
            closeAfterFlushing()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inputComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        channelCanWrite(context, becameActive: false)
    }

    func channelInactive(context: ChannelHandlerContext) {
        markUnusable()
        let open = streams.values
        streams.removeAll()
        for stream in open {
            stream.abort(RPCError(.unavailable, "connection to \(authority) closed"))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closeNow()
    }

    private func markUnusable() {
        guard isUsable else { return }
        isUsable = false
        onUnusable()
    }

    // MARK: Calls

    /// Starts a call: submits the request headers; the body follows as the caller sends.
    func startCall(
        _ method: MethodDescriptor, metadata: Metadata, options: CallOptions, maxResponseBytes: Int
    ) throws -> ClientStream {
        guard isUsable, let context = pump.context else {
            throw RPCError(.unavailable, "connection to \(authority) is closing")
        }
        let stream = ClientStream(
            method: method, maxMessageBytes: options.maxResponseMessageBytes ?? maxResponseBytes,
            connection: NIOLoopBound(self, eventLoop: context.eventLoop))
        var headers = [
            (":method", "POST"), (":scheme", scheme), (":path", method.path), (":authority", authority),
            ("content-type", "application/grpc"), ("te", "trailers"), ("user-agent", "portal-swift/1.0"),
            ("grpc-accept-encoding", "identity"),
        ]
        if let timeout = options.timeout { headers.append(("grpc-timeout", GRPCTimeout.format(timeout))) }
        headers += HTTP2Metadata.headerFields(metadata)
        guard let id = session.submitRequest(headers: headers) else {
            throw RPCError(.unavailable, "connection to \(authority) refused a new stream")
        }
        stream.id = id
        streams[id] = stream
        if let timeout = options.timeout {
            stream.deadlineTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout.timeAmount) { [self] in
                cancel(stream, with: RPCError(.deadlineExceeded, "deadline of \(timeout) exceeded"))
            }
        }
        flushSoon()
        return stream
    }

    /// Queues a request message.
    func write(_ message: [UInt8], on stream: ClientStream) {
        guard !stream.ended, !stream.requestsFinished else {
            stream.released(message.count + 5)
            return
        }
        session.enqueue(message, framed: true, on: stream.id)
        flushSoon()
    }

    /// Half-closes the request side once the queued messages are out.
    func finishRequests(on stream: ClientStream) {
        guard !stream.ended, !stream.requestsFinished else { return }
        stream.requestsFinished = true
        session.endBody(on: stream.id)
        flushSoon()
    }

    /// Resets the stream and fails the call with `error`.
    func cancel(_ stream: ClientStream, with error: RPCError) {
        guard !stream.ended else { return }
        if streams.removeValue(forKey: stream.id) != nil {
            session.resetStream(streamID: stream.id, errorCode: 8)  // CANCEL
        }
        stream.abort(error)
        flushSoon()
    }

    /// Returns the window a stream owes once its caller has caught up with buffered responses.
    func repayWindow(streamID: Int32) {
        guard let stream = streams[streamID] else { return }
        let count = stream.repayWindow()
        guard count > 0 else { return }
        session.consumeStream(streamID: streamID, count: count)
        flushSoon()
    }

    // MARK: Session events

    func handle(_ event: HTTP2Event) {
        switch event {
        case .headers(let streamID, let range, let endStream):
            guard let stream = streams[streamID] else { return }
            var fields: [(String, String)] = []
            session.forEachHeaderField(in: range) { name, value in
                fields.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
            }
            receivedHeaders(fields, on: stream, endStream: endStream)
        case .data(let streamID, let bytes):
            session.withData(bytes) { received(streamID: streamID, bytes: $0) }
        case .endOfData(let streamID):
            guard let stream = streams[streamID], !stream.ended else { return }
            stream.end(trailers: Metadata(), error: RPCError(.internal, "the server ended the stream without trailers"))
        case .closed(let streamID, let errorCode):
            guard let stream = streams.removeValue(forKey: streamID), !stream.ended else { return }
            let error =
                switch errorCode {
                case 7: RPCError(.unavailable, "the server refused the stream")  // REFUSED_STREAM
                case 8: RPCError(.cancelled, "the server cancelled the stream")  // CANCEL
                case 11: RPCError(.resourceExhausted, "the server asked to calm down (ENHANCE_YOUR_CALM)")
                default: RPCError(.internal, "stream reset by the server (HTTP/2 error \(errorCode))")
                }
            stream.abort(error)
        case .goAway(let lastStreamID, _):
            markUnusable()
            for (id, stream) in streams.entries where id > lastStreamID {
                streams[id] = nil
                stream.abort(RPCError(.unavailable, "the server is shutting down (GOAWAY)"))
            }
        case .sent(let streamID, let count):
            streams[streamID]?.released(count)
        case .reset, .pingAcknowledged:
            break
        }
    }

    private func receivedHeaders(_ fields: [(String, String)], on stream: ClientStream, endStream: Bool) {
        let metadata = HTTP2Metadata.metadata(from: fields)
        if !stream.receivedHeaders {
            stream.receivedHeaders = true
            if let error = Self.httpError(fields) {
                stream.end(trailers: metadata, error: error)
                return
            }
            if endStream {  // Trailers-only response.
                stream.deliverHeaders(Metadata())
                stream.end(trailers: metadata, error: GRPCStatusHeaders.error(fromTrailers: fields, metadata: metadata))
            } else {
                stream.deliverHeaders(metadata)
            }
        } else {
            stream.end(trailers: metadata, error: GRPCStatusHeaders.error(fromTrailers: fields, metadata: metadata))
        }
    }

    private func received(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        guard let stream = streams[streamID], !stream.ended else {
            session.consumeStream(streamID: streamID, count: bytes.count)
            return
        }
        do {
            session.consumeStream(streamID: streamID, count: try stream.receive(bytes))
        } catch {
            session.consumeStream(streamID: streamID, count: bytes.count)
            cancel(stream, with: error.error)
        }
    }

    /// The status for a response that is not a gRPC response (HTTP status other than 200, wrong content type).
    private static func httpError(_ fields: [(String, String)]) -> RPCError? {
        let status = fields.first { $0.0 == ":status" }?.1 ?? ""
        guard status == "200" else {
            let code: RPCStatusCode =
                switch status {
                case "400": .internal
                case "401": .unauthenticated
                case "403": .permissionDenied
                case "404": .unimplemented
                case "429", "502", "503", "504": .unavailable
                default: .unknown
                }
            return RPCError(code, "HTTP status \(status)")
        }
        let contentType = fields.first { $0.0 == "content-type" }?.1 ?? ""
        guard contentType.hasPrefix("application/grpc") else {
            return RPCError(.unknown, "response content-type \(contentType) is not gRPC")
        }
        return nil
    }
}
