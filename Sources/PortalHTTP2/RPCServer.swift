import Logging
import NIOCore
import NIOPosix
import PortalRPC
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A gRPC server over HTTP/2, hosting a set of services: cleartext (prior knowledge), or TLS with ALPN `h2`.
///
/// With TLS configured the port still accepts cleartext HTTP/2, for health checks only (see
/// `TransportPolicyInterceptor`), because Kubernetes gRPC probes cannot speak TLS.
///
/// Run it as a lifecycle `Service`: `run()` serves until graceful shutdown, which stops accepting,
/// sends GOAWAY, lets in-flight calls finish within `gracePeriod`, then closes what is left.
public final class RPCServer: Service, Sendable {
    /// How the server listens and what it accepts.
    public struct Configuration: Sendable {
        /// The address to bind.
        public var host: String
        /// The port to bind; 0 picks a free one.
        public var port: Int
        /// The largest request message accepted (`RESOURCE_EXHAUSTED` beyond it).
        public var maxReceiveMessageBytes: Int = 4 << 20
        /// Open connections accepted at once; more are closed on accept.
        public var maxConnections: Int = 10_000
        /// HTTP/2 settings and abuse limits per connection.
        public var limits = HTTP2Limits()
        /// How long in-flight calls may run after shutdown starts.
        public var gracePeriod: Duration = .seconds(10)
        /// The server's certificate and what it asks of clients; nil serves cleartext only.
        public var tls: TLSContextSource?

        /// A configuration with defaults for everything but the address.
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    private let configuration: Configuration
    private let services: [any RPCService]
    private let logger: Logger
    private let group: any EventLoopGroup
    private let connections = ConnectionRegistry()
    private let launcher: ServerCallLauncher
    /// Finishes once shutdown has begun and the last connection has closed.
    private let stopped: AsyncStream<Void>
    private let stoppedSink: AsyncStream<Void>.Continuation
    private let state = Locked(State())
    private let onShutdown: @Sendable () -> Void

    private struct State {
        var channel: (any Channel)?
        var bindWaiters: [CheckedContinuation<SocketAddress, any Error>] = []
        var shuttingDown = false
    }

    /// Creates a server running every call through `interceptors` and telling `observers` of it,
    /// inside a span of `tracer` when there is one; `onShutdown` runs when graceful shutdown begins
    /// (to flip health to NOT_SERVING).
    public init(
        configuration: Configuration, services: [any RPCService], interceptors: [any ServerInterceptor] = [],
        observers: [any ServerCallObserver] = [], tracer: (any ServerCallTracer)? = nil, logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onShutdown: @escaping @Sendable () -> Void = {}
    ) {
        self.configuration = configuration
        self.services = services
        self.logger = logger
        self.group = eventLoopGroup
        self.onShutdown = onShutdown
        launcher = ServerCallLauncher(
            executor: ServerCallExecutor(
                interceptors: interceptors, observers: observers, tracer: tracer, logger: logger))
        (stopped, stoppedSink) = AsyncStream.makeStream(of: Void.self)
    }

    /// The bound address, once `run()` has bound the socket.
    public func boundAddress() async throws -> SocketAddress {
        try await withCheckedThrowingContinuation { continuation in
            let address = state.withLock { state -> SocketAddress? in
                if let address = state.channel?.localAddress { return address }
                state.bindWaiters.append(continuation)
                return nil
            }
            if let address { continuation.resume(returning: address) }
        }
    }

    /// Binds the listening socket now, so a port in use is found before anything else starts;
    /// `run()` then serves on it. Throws `ListenError` naming the address and the cause.
    public func listen() async throws {
        guard state.withLock({ $0.channel == nil }) else { return }
        let channel: any Channel
        do {
            channel = try await bind()
        } catch {
            throw ListenError(host: configuration.host, port: configuration.port, cause: error)
        }
        state.withLock { $0.channel = channel }
    }

    /// Closes a socket `listen()` bound, for a server that will never run (another service failed to start).
    public func closeListener() async {
        let channel = state.withLock { $0.channel }
        try? await channel?.close()
    }

    /// Binds (unless `listen()` did), serves calls until graceful shutdown, and returns once every call has finished.
    public func run() async throws {
        let channel: any Channel
        do {
            if let bound = state.withLock({ $0.channel }) {
                channel = bound
            } else {
                channel = try await bind()
            }
        } catch {
            let error = ListenError(host: configuration.host, port: configuration.port, cause: error)
            let waiters = state.withLock { state in
                defer { state.bindWaiters = [] }
                return state.bindWaiters
            }
            for waiter in waiters { waiter.resume(throwing: error) }
            throw error
        }
        let waiters = state.withLock { state in
            state.channel = channel
            defer { state.bindWaiters = [] }
            return state.bindWaiters
        }
        for waiter in waiters { waiter.resume(returning: channel.localAddress!) }
        logger.info("listening", metadata: ["address": "\(channel.localAddress!)"])
        launcher.open()

        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                for await _ in stopped {}
            } onCancel: {
                self.beginGracefulShutdown()
                self.connections.forEach { $0.closeConnection() }
            }
            await launcher.waitUntilIdle()
        } onGracefulShutdown: {
            self.beginGracefulShutdown()
        }
        try? await channel.closeFuture.get()
        logger.info("stopped")
    }

    /// Starts a graceful shutdown (also triggered by the service group on SIGTERM or SIGINT).
    public func beginGracefulShutdown() {
        let channel = state.withLock { state -> (any Channel)? in
            guard !state.shuttingDown else { return nil }
            state.shuttingDown = true
            return state.channel
        }
        guard let channel else { return }
        logger.info("shutting down", metadata: ["grace_period": "\(configuration.gracePeriod)"])
        onShutdown()
        channel.close(promise: nil)
        connections.whenEmpty { self.stoppedSink.finish() }
        connections.forEach { $0.beginGracefulShutdown() }
        let (seconds, _) = configuration.gracePeriod.components
        channel.eventLoop.scheduleTask(in: .seconds(seconds)) { [connections] in
            connections.forEach { $0.closeConnection() }
        }
    }

    private func bind() async throws -> any Channel {
        var routes: [String: RPCRoute] = [:]
        for service in services {
            for route in service.routes { routes[route.method.path] = route }
        }
        let connectionConfiguration = ServerConnectionConfiguration(
            routes: routes, services: Set(services.map(\.serviceName)), limits: configuration.limits,
            maxReceiveMessageBytes: configuration.maxReceiveMessageBytes, launcher: launcher)
        let connections = self.connections
        let maxConnections = configuration.maxConnections
        let logger = self.logger
        let tls = configuration.tls
        let metrics = ConnectionMetrics()
        let install: @Sendable (any Channel, TransportSecurity) throws -> Void = { [weak self] channel, transport in
            guard let self, !self.state.withLock({ $0.shuttingDown }) else {
                channel.close(promise: nil)
                return
            }
            let handler = ServerConnection(configuration: connectionConfiguration, transport: transport)
            try channel.pipeline.syncOperations.addHandler(handler)
            connections.add(handler, channel: channel)
            metrics.opened(transport, channel: channel)
        }
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 64 << 10, high: 256 << 10))
            .childChannelInitializer { channel in
                guard connections.count < maxConnections else {
                    logger.warning("connection refused: limit reached", metadata: ["limit": "\(maxConnections)"])
                    return channel.close()
                }
                return channel.eventLoop.makeCompletedFuture {
                    guard let tls else { return try install(channel, .cleartext) }
                    let peer = channel.remoteAddress?.description ?? "unknown"
                    try channel.pipeline.syncOperations.addHandler(
                        TransportSniffer(tls: tls, install: install) { reason in
                            metrics.handshakeFailed()
                            logger.info("TLS handshake failed", metadata: ["peer": "\(peer)", "reason": "\(reason)"])
                        })
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
    }
}

/// The open connections of a server, so shutdown can reach each one on its event loop.
final class ConnectionRegistry: Sendable {
    private struct State {
        var connections: [ObjectIdentifier: NIOLoopBound<ServerConnection>] = [:]
        var whenEmpty: (@Sendable () -> Void)?
    }

    private let state = Locked(State())

    var count: Int { state.withLock { $0.connections.count } }

    func add(_ handler: ServerConnection, channel: any Channel) {
        let key = ObjectIdentifier(handler)
        state.withLock { $0.connections[key] = NIOLoopBound(handler, eventLoop: channel.eventLoop) }
        channel.closeFuture.whenComplete { [self] _ in
            let callback = state.withLock { state -> (@Sendable () -> Void)? in
                state.connections[key] = nil
                guard state.connections.isEmpty else { return nil }
                defer { state.whenEmpty = nil }
                return state.whenEmpty
            }
            callback?()
        }
    }

    /// Runs `body` on each connection's event loop.
    func forEach(_ body: @escaping @Sendable (ServerConnection) -> Void) {
        let all = state.withLock { Array($0.connections.values) }
        for bound in all {
            bound.eventLoop.execute { body(bound.value) }
        }
    }

    /// Calls `callback` once no connection is open (now, if none is).
    func whenEmpty(_ callback: @escaping @Sendable () -> Void) {
        let now = state.withLock { state -> Bool in
            if state.connections.isEmpty { return true }
            state.whenEmpty = callback
            return false
        }
        if now { callback() }
    }
}

/// A server that could not listen: the address and why (`address already in use`, …).
public struct ListenError: Error, CustomStringConvertible {
    /// The address asked for.
    public let host: String
    /// The port asked for.
    public let port: Int
    /// The socket error.
    public let cause: any Error

    /// An error for a listener at `host:port` that could not bind.
    public init(host: String, port: Int, cause: any Error) {
        self.host = host
        self.port = port
        self.cause = cause
    }

    /// `cannot listen on 127.0.0.1:50050: address already in use`.
    public var description: String {
        let reason: String
        if let error = cause as? IOError {
            reason = String(cString: strerror(error.errnoCode)).lowercased()
        } else {
            reason = "\(cause)"
        }
        let address = host.contains(":") ? "[\(host)]" : host
        return "cannot listen on \(address):\(port): \(reason)"
    }
}
