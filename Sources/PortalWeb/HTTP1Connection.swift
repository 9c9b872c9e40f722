import NIOCore
import NIOHTTP1
import PortalHTTP2
import PortalRPC

/// Limits on what one web request may send.
public struct WebLimits: Sendable {
    /// The largest request body accepted (413 beyond it).
    public var maxBodyBytes = 4 << 20
    /// The largest request head (request line and header fields) accepted (431 beyond it).
    public var maxHeadBytes = 16 << 10

    /// The defaults: 4 MiB bodies, 16 KiB heads.
    public init() {}
}

/// Serves HTTP/1.1 requests on one web connection: reads each request whole (within the limits),
/// hands it to the application, and writes its response, streamed parts flushed as they come.
final class HTTP1Connection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let application: WebApplication
    private let limits: WebLimits
    private let transport: TransportSecurity
    private let tracker: RequestTracker
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var refused = false
    /// Body bytes read and dropped after a refusal, so the client can read the answer before the connection closes.
    private var discarded = 0
    private var running: Task<Void, Never>?

    init(application: WebApplication, limits: WebLimits, transport: TransportSecurity, tracker: RequestTracker) {
        self.application = application
        self.limits = limits
        self.transport = transport
        self.tracker = tracker
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            head = requestHead
            body = []
            refused = false
            discarded = 0
            let headBytes =
                requestHead.uri.utf8.count
                + requestHead.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
            if headBytes > limits.maxHeadBytes {
                refuse(
                    context: context, status: .requestHeaderFieldsTooLarge,
                    "the request head is larger than \(limits.maxHeadBytes) bytes")
            } else if let length = requestHead.headers.first(name: "content-length").flatMap(Int.init),
                length > limits.maxBodyBytes
            {
                refuse(
                    context: context, status: .payloadTooLarge,
                    "the request body is larger than \(limits.maxBodyBytes) bytes")
            }
        case .body(var buffer):
            guard !refused else {
                discarded += buffer.readableBytes
                if discarded > 4 * limits.maxBodyBytes { context.close(promise: nil) }
                return
            }
            guard body.count + buffer.readableBytes <= limits.maxBodyBytes else {
                refuse(
                    context: context, status: .payloadTooLarge,
                    "the request body is larger than \(limits.maxBodyBytes) bytes")
                return
            }
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            if refused {
                context.close(promise: nil)
                return
            }
            guard let head else { return }
            self.head = nil
            let request = WebRequest(
                method: head.method.rawValue, target: head.uri, headers: head.headers.map { ($0.name, $0.value) },
                body: body,
                peer: context.remoteAddress?.description ?? "unknown", transport: transport)
            body = []
            let responder = HTTP1Responder(
                channel: context.channel, version: head.version, keepAlive: head.isKeepAlive, tracker: tracker)
            let application = application
            let tracker = tracker
            tracker.began()
            running = Task {
                await application.handle(request, responder: responder)
                await responder.ensureEnded()
                tracker.ended()
            }
        }
    }

    /// Answers a request over a limit; the connection closes once the rest of the body has been read
    /// (up to four times the limit), so the client is not reset while it still sends and can read the answer.
    private func refuse(context: ChannelHandlerContext, status: HTTPResponseStatus, _ message: String) {
        refused = true
        var headers = HTTPHeaders(BrowserSecurity.responseHeaders(overTLS: transport != .cleartext))
        let text = Array("\(message)\n".utf8)
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        headers.add(name: "content-length", value: String(text.count))
        headers.add(name: "connection", value: "close")
        context.write(
            wrapOutboundOut(
                .head(HTTPResponseHead(version: head?.version ?? .http1_1, status: status, headers: headers))),
            promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: text)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Nothing read or written for the idle timeout: a response in progress would have written.
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        running?.cancel()  // the client left: stop the call it started
        context.fireChannelInactive()
    }

    /// A malformed request (already answered 400 by NIO's protocol error handler) or a broken
    /// connection ends the connection, nothing else.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Writes one response to an HTTP/1.1 connection from any task: whole, or streamed chunk by chunk,
/// each write awaited so a slow reader holds the writer back instead of filling memory.
final class HTTP1Responder: WebResponder, Sendable {
    private let channel: any Channel
    private let version: HTTPVersion
    private let keepAlive: Bool
    private let tracker: RequestTracker
    private let progress = ResponseProgress()

    init(channel: any Channel, version: HTTPVersion, keepAlive: Bool, tracker: RequestTracker) {
        self.channel = channel
        self.version = version
        self.keepAlive = keepAlive
        self.tracker = tracker
    }

    private var closesAfter: Bool { !keepAlive || tracker.isShuttingDown }

    private func head(status: Int, headers: [(String, String)]) -> HTTPServerResponsePart {
        var fields = HTTPHeaders(headers)
        if closesAfter { fields.replaceOrAdd(name: "connection", value: "close") }
        return .head(
            HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: status), headers: fields))
    }

    func respond(status: Int, headers: [(String, String)], body: [UInt8]) async {
        guard progress.beginWhole() else { return }
        var headers = headers
        if !headers.contains(where: { $0.0 == "content-length" }) {
            headers.append(("content-length", String(body.count)))
        }
        channel.write(head(status: status, headers: headers), promise: nil)
        if !body.isEmpty {
            channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
        }
        try? await channel.writeAndFlush(HTTPServerResponsePart.end(nil))
        if closesAfter { try? await channel.close() }
    }

    func startStream(status: Int, headers: [(String, String)]) async throws {
        try progress.beginStream()
        // Without a content-length, HTTP/1.1 sends the body chunked: each write is one chunk.
        try await channel.writeAndFlush(head(status: status, headers: headers))
    }

    func write(_ part: [UInt8]) async throws {
        try progress.requireStream()
        guard !part.isEmpty else { return }
        try await channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: part))))
    }

    func finishStream() async {
        guard progress.endStream() else { return }
        try? await channel.writeAndFlush(HTTPServerResponsePart.end(nil))
        if closesAfter { try? await channel.close() }
    }

    func abortStream() async {
        progress.abandon()
        try? await channel.close()
    }

    /// Ends a response the application left open (it should not), so the connection is never stuck.
    func ensureEnded() async {
        await progress.ensureEnded(self)
    }
}
