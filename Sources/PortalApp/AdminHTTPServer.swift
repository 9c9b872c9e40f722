import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import PortalTime
import Prometheus
import ServiceLifecycle

/// The admin port of a service, plain HTTP/1.1 for the platform: `GET /metrics` (Prometheus text
/// exposition of every metric of the process), `GET /healthz` (200 while the process runs) and
/// `GET /readyz` (200 while the server is serving; 503 with the reason while its database does not
/// answer and once it is shutting down). A service run with a
/// testing clock also answers `POST /testing/clock?advance_ms=N`, which moves that clock forward.
public final class AdminHTTPServer: Service, Sendable {
    private let host: String
    private let port: Int
    private let registry: PrometheusCollectorRegistry
    private let notReady: @Sendable () -> String?
    private let testingClock: OffsetClock?
    private let logger: Logger

    /// A server on `host:port` exposing `registry`, ready while `notReady` gives no reason not to be;
    /// `testingClock` is the clock tests may move (nil serves no such route).
    public init(
        host: String, port: Int, registry: PrometheusCollectorRegistry, notReady: @escaping @Sendable () -> String?,
        testingClock: OffsetClock? = nil,
        logger: Logger
    ) {
        self.host = host
        self.port = port
        self.registry = registry
        self.notReady = notReady
        self.testingClock = testingClock
        self.logger = logger
    }

    /// Serves until graceful shutdown (it is listed first, so it stops after the servers it reports on).
    public func run() async throws {
        let (registry, notReady, testingClock) = (registry, notReady, testingClock)
        let channel = try await ServerBootstrap(group: EventLoops.shared)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(
                        AdminRequestHandler(registry: registry, notReady: notReady, testingClock: testingClock))
                }
            }
            .bind(host: host, port: port).get()
        logger.info("admin port listening", metadata: ["address": "\(host):\(port)"])
        try? await gracefulShutdown()
        try? await channel.close()
    }
}

/// Answers one admin request per HTTP/1.1 request.
private final class AdminRequestHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let registry: PrometheusCollectorRegistry
    private let notReady: @Sendable () -> String?
    private let testingClock: OffsetClock?

    init(registry: PrometheusCollectorRegistry, notReady: @escaping @Sendable () -> String?, testingClock: OffsetClock?)
    {
        self.registry = registry
        self.notReady = notReady
        self.testingClock = testingClock
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let request) = unwrapInboundIn(data) else { return }
        let parts = request.uri.split(separator: "?", maxSplits: 1).map(String.init)
        let path = parts.first ?? request.uri
        let (status, contentType, body): (HTTPResponseStatus, String, [UInt8]) =
            switch (request.method, path) {
            case (.GET, "/metrics"): (.ok, "text/plain; version=0.0.4; charset=utf-8", registry.emitToBuffer())
            case (.GET, "/healthz"): (.ok, "text/plain", Array("ok\n".utf8))
            case (.GET, "/readyz"):
                notReady().map { (.serviceUnavailable, "text/plain", Array("\($0)\n".utf8)) }
                    ?? (.ok, "text/plain", Array("ready\n".utf8))
            case (.POST, "/testing/clock") where testingClock != nil:
                Self.advance(testingClock!, query: parts.count > 1 ? parts[1] : "")
            case (.GET, _):
                (.notFound, "text/plain", Array("not found: /metrics, /healthz and /readyz are served here\n".utf8))
            default: (.methodNotAllowed, "text/plain", Array("only GET\n".utf8))
            }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: String(body.count))
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))),
            promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    /// Moves the testing clock by the query's `advance_ms`.
    private static func advance(_ clock: OffsetClock, query: String) -> (HTTPResponseStatus, String, [UInt8]) {
        let fields = query.split(separator: "&").map { $0.split(separator: "=", maxSplits: 1) }
        guard let field = fields.first(where: { $0.first == "advance_ms" }), field.count == 2,
            let milliseconds = Int64(field[1]), milliseconds >= 0
        else {
            return (
                .badRequest, "text/plain",
                Array("advance_ms: expected a number of milliseconds to move the clock forward\n".utf8)
            )
        }
        clock.advance(by: .milliseconds(milliseconds))
        return (.ok, "text/plain", Array("moved \(milliseconds) ms; \(clock.elapsed) in all\n".utf8))
    }

    /// A malformed request or a broken connection ends the connection, nothing else.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
