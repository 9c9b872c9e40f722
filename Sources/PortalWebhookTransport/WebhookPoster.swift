import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Sends one webhook POST on a connection of its own to an address the target policy checked: TLS
/// with the URL's host as server name (verified against the system's trust roots, and any CA the
/// operator added), one request, the answer's status read, the connection closed.
public final class WebhookPoster: Sendable {
    /// TLS for https endpoints, or why there is none (a host without a CA bundle): then only https
    /// deliveries fail, saying so, and the service still starts.
    private let tls: Result<NIOSSLContext, Failure>
    private let group: any EventLoopGroup

    /// A poster trusting the system's roots and the PEM certificates in `extraTrustRoots` (files).
    public init(extraTrustRoots: [String] = [], group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.additionalTrustRoots = extraTrustRoots.map { .file($0) }
        do {
            tls = .success(try NIOSSLContext(configuration: configuration))
        } catch {
            tls = .failure(Failure(description: "no TLS trust roots to verify endpoints with: \(error)"))
        }
        self.group = group
    }

    /// What came back.
    public struct Answer: Sendable {
        /// The HTTP status.
        public let status: Int
    }

    /// Why a POST got no answer.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        /// What went wrong (connection, TLS, timeout), for the delivery's record.
        public let description: String
        /// True when no connection was made (another of the host's addresses may work).
        public var notConnected = false
    }

    /// POSTs `body` to `url` at `address` with `headers`, waiting at most `timeout` for the answer.
    public func post(
        _ body: [UInt8], to url: WebhookURL, at address: SocketAddress, headers: [(String, String)],
        timeout: Duration
    ) async throws -> Answer {
        let status = group.next().makePromise(of: Int.self)
        let tls = url.scheme == "https" ? try self.tls.get() : nil
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.milliseconds(Int64(timeout.components.seconds * 1000)))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: tls, serverHostname: Self.serverName(url.host)))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(StatusReader(status: status))
                }
            }
        // The waits below end when the task is cancelled (the service shuts down), not only when
        // the endpoint answers or the timeout passes.
        let connecting = bootstrap.connect(to: address)
        let connected = group.next().makePromise(of: (any Channel).self)
        connecting.cascade(to: connected)
        let channel: any Channel
        do {
            channel = try await withTaskCancellationHandler {
                try await connected.futureResult.get()
            } onCancel: {
                connected.fail(CancellationError())
                connecting.whenSuccess { $0.close(promise: nil) }
            }
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw Failure(description: "cannot connect to \(url.hostHeader): \(error)", notConnected: true)
        }
        let deadline = channel.eventLoop.scheduleTask(
            in: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000)
        ) {
            status.fail(Failure(description: "no answer within \(timeout.components.seconds) s"))
            channel.close(promise: nil)
        }
        defer {
            deadline.cancel()
            channel.close(promise: nil)
        }
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: url.target)
        head.headers.add(name: "Host", value: url.hostHeader)
        head.headers.add(name: "Content-Length", value: String(body.count))
        head.headers.add(name: "Connection", value: "close")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        do {
            return Answer(
                status: try await withTaskCancellationHandler {
                    try await status.futureResult.get()
                } onCancel: {
                    status.fail(CancellationError())
                })
        } catch is CancellationError {
            throw CancellationError()
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "\(error)")
        }
    }

    /// The TLS server name: a host name (an IP literal sends none, and is verified by address).
    private static func serverName(_ host: String) -> String? {
        host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
    }
}

/// Completes the promise with the response's status, or fails it when the connection ends first.
private final class StatusReader: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPClientResponsePart
    private let status: EventLoopPromise<Int>

    init(status: EventLoopPromise<Int>) {
        self.status = status
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) {
            status.succeed(Int(head.status.code))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        status.fail(WebhookPoster.Failure(description: "the connection closed before an answer"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        status.fail(WebhookPoster.Failure(description: "\(error)"))
        context.close(promise: nil)
    }
}
