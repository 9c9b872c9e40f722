import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import PortalHTTP2
import PortalRPC
import ServiceLifecycle

/// The gateway's web listener: HTTP/1.1 or HTTP/2 (by ALPN over TLS, by the preface in cleartext),
/// serving a `WebApplication` to browsers.
///
/// Run it as a lifecycle `Service`. Graceful shutdown stops accepting, lets requests in progress
/// finish within the grace period (their responses close their connections), then closes the rest.
public final class WebServer: Service, Sendable {
    /// Where the listener binds and what it accepts.
    public struct Configuration: Sendable {
        /// The address to bind.
        public var host: String
        /// The port to bind; 0 picks a free one.
        public var port: Int
        /// Request size limits.
        public var limits = WebLimits()
        /// A connection with no traffic either way for this long is closed.
        public var idleTimeout: TimeAmount = .seconds(60)
        /// How long requests in progress may run after shutdown starts.
        public var gracePeriod: Duration = .seconds(10)
        /// The certificate served (HTTPS only); nil serves cleartext HTTP.
        public var tls: TLSContextSource?

        /// A configuration with defaults for everything but the address.
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    private let configuration: Configuration
    private let application: WebApplication
    private let logger: Logger
    private let group: any EventLoopGroup
    private let tracker = RequestTracker()
    private let channel = Locked<(any Channel)?>(nil)
    private let connections = OpenConnections()

    /// A listener serving `application`.
    public init(
        configuration: Configuration, application: WebApplication, logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.configuration = configuration
        self.application = application
        self.logger = logger
        group = eventLoopGroup
    }

    /// Binds the socket now, so a port in use is found before anything starts; throws `ListenError`.
    public func listen() async throws {
        guard channel.withLock({ $0 == nil }) else { return }
        do {
            let bound = try await bind()
            channel.withLock { $0 = bound }
        } catch {
            throw ListenError(host: configuration.host, port: configuration.port, cause: error)
        }
    }

    /// The bound address, once listening.
    public var boundAddress: SocketAddress? { channel.withLock { $0?.localAddress } }

    /// Closes a socket `listen()` bound, for a server that will never run.
    public func closeListener() async {
        try? await channel.withLock({ $0 })?.close()
    }

    /// Serves until graceful shutdown.
    public func run() async throws {
        try await listen()
        guard let listening = channel.withLock({ $0 }) else { return }
        logger.info(
            "web listener ready",
            metadata: [
                "address": "\(listening.localAddress.map { "\($0)" } ?? "?")",
                "scheme": .string(configuration.tls == nil ? "http" : "https"),
            ])
        try? await gracefulShutdown()
        try? await listening.close()
        let tracker = tracker
        let drained = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await tracker.shutDownWhenIdle()
                return true
            }
            group.addTask {
                try? await Task.sleep(for: self.configuration.gracePeriod)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        if !drained { logger.warning("web requests still running at the end of the grace period are cut off") }
        for connection in connections.all { try? await connection.close() }
        logger.info("web listener stopped")
    }

    private func bind() async throws -> any Channel {
        let application = application
        let configuration = configuration
        let tracker = tracker
        let connections = connections
        let logger = logger
        let install: @Sendable (any Channel, TransportSecurity, Bool) throws -> Void = { channel, transport, http2 in
            let pipeline = channel.pipeline.syncOperations
            if http2 {
                try HTTP2WebConnection.install(
                    on: channel, transport: transport, maxBodyBytes: configuration.limits.maxBodyBytes,
                    handler: { request, responder in
                        tracker.began()
                        await application.handle(request, responder: responder)
                        tracker.ended()
                    })
                return
            }
            try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
            try pipeline.addHandler(IdleStateHandler(allTimeout: configuration.idleTimeout))
            try pipeline.addHandler(
                HTTP1Connection(
                    application: application, limits: configuration.limits, transport: transport, tracker: tracker))
        }
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 64 << 10, high: 256 << 10))
            .childChannelInitializer { channel in
                connections.add(channel)
                return channel.eventLoop.makeCompletedFuture {
                    guard let tls = configuration.tls else {
                        return try channel.pipeline.syncOperations.addHandler(
                            ProtocolSniffer { channel, http2 in try install(channel, .cleartext, http2) })
                    }
                    let peer = channel.remoteAddress?.description ?? "unknown"
                    try WebTLS.addServerHandler(to: channel, source: tls, onEstablished: install) { reason in
                        logger.info("TLS handshake failed", metadata: ["peer": "\(peer)", "reason": "\(reason)"])
                    }
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
    }
}

/// A listener's open connections, so shutdown can close what is left.
final class OpenConnections: Sendable {
    private let channels = Locked<[ObjectIdentifier: any Channel]>([:])

    /// Every open connection.
    var all: [any Channel] { channels.withLock { Array($0.values) } }

    /// Tracks `channel` until it closes.
    func add(_ channel: any Channel) {
        let key = ObjectIdentifier(channel)
        channels.withLock { $0[key] = channel }
        channel.closeFuture.whenComplete { _ in _ = self.channels.withLock { $0.removeValue(forKey: key) } }
    }
}
