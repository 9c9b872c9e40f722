import NIOCore
import NIOPosix
import PortalRPC
import Synchronization

/// A client channel to one gRPC server: one multiplexed HTTP/2 connection, reconnected on demand.
///
/// Cleartext HTTP/2 with prior knowledge, or TLS (ALPN `h2`, the server's certificate checked against
/// the CA and the host name) when `Configuration.tls` is set; a failed handshake fails the call with
/// `UNAVAILABLE` and the reason.
///
/// When connecting fails the channel waits with exponential backoff (1 s doubling by 1.6 up to
/// 120 s, with jitter, as gRPC's connection-backoff spec describes) and fails calls fast with
/// `UNAVAILABLE` meanwhile. Call `close()` when done.
public final class RPCClientChannel: RPCChannel, Sendable {
    /// Connection and call defaults.
    public struct Configuration: Sendable {
        /// The largest response message accepted unless a call says otherwise.
        public var maxResponseMessageBytes: Int = 4 << 20
        /// How long to wait for a TCP connection.
        public var connectTimeout: Duration = .seconds(10)
        /// The first reconnection delay.
        public var initialBackoff: Duration = .seconds(1)
        /// The longest reconnection delay.
        public var maxBackoff: Duration = .seconds(120)
        /// HTTP/2 settings and limits.
        public var limits = HTTP2Limits()
        /// The CA that verifies the server and the certificate presented to it; nil connects in cleartext.
        public var tls: TLSContextSource?
        /// The name the server's certificate must carry; nil expects the host connected to.
        public var serverName: String?

        /// The defaults above.
        public init() {}
    }

    private let host: String
    private let port: Int
    private let configuration: Configuration
    private let group: any EventLoopGroup
    private let state = Locked(State())

    private typealias Connection = NIOLoopBound<ClientConnection>

    private struct State {
        var connection: (key: ObjectIdentifier, handler: Connection)?
        var connecting: EventLoopFuture<(key: ObjectIdentifier, handler: Connection)>?
        var failures = 0
        var retryAt: ContinuousClock.Instant?
        var closed = false
        var channels: [ObjectIdentifier: any Channel] = [:]
    }

    /// A channel to `host:port`.
    public init(
        host: String, port: Int, configuration: Configuration = .init(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.host = host
        self.port = port
        self.configuration = configuration
        self.group = eventLoopGroup
    }

    /// Starts a call on the current connection, connecting first when there is none.
    public func openCall(
        _ method: MethodDescriptor, metadata: Metadata, options: CallOptions
    ) async throws -> any ClientCallStream {
        let connection = try await currentConnection()
        let maxResponse = configuration.maxResponseMessageBytes
        return try await connection.eventLoop.submit {
            try connection.value.startCall(method, metadata: metadata, options: options, maxResponseBytes: maxResponse)
        }.get()
    }

    /// Closes the connection; calls in flight fail with `UNAVAILABLE`.
    public func close() async {
        let channels = state.withLock { state in
            state.closed = true
            state.connection = nil
            return Array(state.channels.values)
        }
        for channel in channels { try? await channel.close() }
    }

    private func currentConnection() async throws -> Connection {
        enum Next {
            case ready(Connection)
            case wait(EventLoopFuture<(key: ObjectIdentifier, handler: Connection)>)
            case fail(RPCError)
            case connect
        }
        let next = state.withLock { state -> Next in
            if state.closed { return .fail(RPCError(.unavailable, "channel to \(host):\(port) is closed")) }
            if let connection = state.connection { return .ready(connection.handler) }
            if let connecting = state.connecting { return .wait(connecting) }
            if let retryAt = state.retryAt, ContinuousClock.now < retryAt {
                return .fail(RPCError(.unavailable, "cannot reach \(host):\(port); retrying in \(retryAt - .now)"))
            }
            return .connect
        }
        switch next {
        case .ready(let connection):
            return connection
        case .fail(let error):
            throw error
        case .wait(let future):
            do {
                return try await future.get().handler
            } catch {
                throw RPCError(.unavailable, "cannot reach \(host):\(port): \(error)", cause: error)
            }
        case .connect:
            let future = connect()
            state.withLock { $0.connecting = future }
            do {
                let connection = try await future.get()
                state.withLock { state in
                    state.connecting = nil
                    state.failures = 0
                    state.retryAt = nil
                    if !state.closed { state.connection = connection }
                }
                return connection.handler
            } catch {
                state.withLock { state in
                    state.connecting = nil
                    state.failures += 1
                    state.retryAt = .now + backoff(afterFailures: state.failures)
                }
                throw RPCError(.unavailable, "cannot reach \(host):\(port): \(error)", cause: error)
            }
        }
    }

    private func connect() -> EventLoopFuture<(key: ObjectIdentifier, handler: Connection)> {
        let authority = "\(host):\(port)"
        let limits = configuration.limits
        let tls: (context: TLSContext, serverName: String)? = configuration.tls.map {
            ($0.current(), configuration.serverName ?? host)
        }
        return ClientBootstrap(group: group)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: .init(low: 64 << 10, high: 256 << 10))
            .connectTimeout(configuration.connectTimeout.timeAmount)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let key = ObjectIdentifier(channel)
                    if let tls {
                        let connection = try TLSConnection(context: tls.context, serverName: tls.serverName)
                        try channel.pipeline.syncOperations.addHandler(TLSHandler(connection: connection))
                    }
                    let handler = ClientConnection(authority: authority, secure: tls != nil, limits: limits) {
                        [weak self] in
                        self?.forget(channelKey: key)
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: host, port: port)
            .flatMap { channel in
                let key = ObjectIdentifier(channel)
                self.state.withLock { $0.channels[key] = channel }
                channel.closeFuture.whenComplete { [weak self] _ in
                    self?.state.withLock { _ = $0.channels.removeValue(forKey: key) }
                }
                return channel.eventLoop.makeCompletedFuture {
                    let handler = try channel.pipeline.syncOperations.handler(type: ClientConnection.self)
                    return (key, NIOLoopBound(handler, eventLoop: channel.eventLoop))
                }.flatMap { connection in
                    guard tls != nil,
                        let handshake = try? channel.pipeline.syncOperations.handler(type: TLSHandler.self)
                    else {
                        return channel.eventLoop.makeSucceededFuture(connection)
                    }
                    return handshake.handshakeResult(on: channel.eventLoop).map { _ in connection }
                }
            }
    }

    /// The connection stopped taking calls (GOAWAY or closed): the next call opens a new one.
    private func forget(channelKey: ObjectIdentifier) {
        state.withLock { state in
            if state.connection?.key == channelKey { state.connection = nil }
        }
    }

    private func backoff(afterFailures failures: Int) -> Duration {
        var delay = Double(configuration.initialBackoff.components.seconds)
        for _ in 1..<max(1, failures) { delay *= 1.6 }
        delay = min(delay, Double(configuration.maxBackoff.components.seconds))
        return .milliseconds(Int(delay * 1000 * Double.random(in: 0.8...1.2)))
    }
}
