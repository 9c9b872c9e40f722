import NIOCore
import PortalRPC

/// TLS inside the NIO pipeline: ciphertext from the socket, plaintext to the HTTP/2 handler after it.
///
/// Writes made before the handshake finishes wait, then go out encrypted. The handshake must finish
/// within `handshakeTimeout` and (for gRPC) negotiate ALPN `h2`, or the connection closes. Lives on its
/// connection's event loop.
final class TLSHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What the handshake established: the negotiated version and, on a server, the client's certificate.
    struct Established {
        var version: String
        var clientCertificate: ClientCertificate?
        /// The protocol ALPN chose (`h2`, `http/1.1`), nil when none.
        var applicationProtocol: String?
    }

    private enum State { case handshaking, established, closed }

    private let connection: TLSConnection
    private let requiresHTTP2: Bool
    private let handshakeTimeout: TimeAmount
    private let onEstablished: (any Channel, Established) throws -> Void
    private let onFailure: (String) -> Void
    private var state = State.handshaking
    private var pendingWrites: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var pendingFlush = false
    private var sentCloseNotify = false
    private var timeout: Scheduled<Void>?
    private var handshakePromise: EventLoopPromise<Established>?
    private var outcome: Result<Established, any Error>?

    /// A handler for `connection`; `onEstablished` runs once the handshake succeeded, before any plaintext is read.
    init(
        connection: TLSConnection, requiresHTTP2: Bool = true, handshakeTimeout: TimeAmount = .seconds(10),
        onEstablished: @escaping (any Channel, Established) throws -> Void = { _, _ in },
        onFailure: @escaping (String) -> Void = { _ in }
    ) {
        self.connection = connection
        self.requiresHTTP2 = requiresHTTP2
        self.handshakeTimeout = handshakeTimeout
        self.onEstablished = onEstablished
        self.onFailure = onFailure
    }

    /// Succeeds when the handshake does, fails with `TLSHandshakeError` otherwise.
    func handshakeResult(on eventLoop: any EventLoop) -> EventLoopFuture<Established> {
        if let outcome { return eventLoop.makeCompletedFuture(outcome) }
        if handshakePromise == nil { handshakePromise = eventLoop.makePromise() }
        return handshakePromise!.futureResult
    }

    private func conclude(_ result: Result<Established, any Error>) {
        outcome = result
        handshakePromise?.completeWith(result)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loop = context.eventLoop.assumeIsolated()
        timeout = loop.scheduleTask(in: handshakeTimeout) { [self] in
            if state == .handshaking {
                fail(
                    context: context,
                    reason: "TLS handshake did not finish within \(handshakeTimeout.nanoseconds / 1_000_000_000) s")
            }
        }
        if context.channel.isActive { advanceHandshake(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        advanceHandshake(context: context)
        context.fireChannelActive()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard state != .closed else { return }
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { connection.receive($0) }
        if state == .handshaking { advanceHandshake(context: context) }
        if state == .established { deliverPlaintext(context: context) }
        if state != .closed { sendOutput(context: context, promise: nil, flush: true) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let wasHandshaking = state == .handshaking
        state = .closed
        timeout?.cancel()
        if wasHandshaking {
            conclude(.failure(TLSHandshakeError(reason: "the connection closed during the TLS handshake")))
        }
        failPendingWrites(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    private func advanceHandshake(context: ChannelHandlerContext) {
        guard state == .handshaking, context.channel.isActive else { return }
        switch connection.handshake() {
        case .inProgress:
            sendOutput(context: context, promise: nil, flush: true)
        case .failed(let reason):
            sendOutput(context: context, promise: nil, flush: true)  // the alert tells the peer why
            fail(context: context, reason: reason)
        case .done:
            guard !requiresHTTP2 || connection.negotiatedProtocol == "h2" else {
                fail(context: context, reason: "the peer did not negotiate HTTP/2 (ALPN h2)")
                return
            }
            state = .established
            timeout?.cancel()
            let established = Established(
                version: connection.version, clientCertificate: connection.peerCertificate(),
                applicationProtocol: connection.negotiatedProtocol)
            do {
                try onEstablished(context.channel, established)
            } catch {
                fail(context: context, reason: "\(error)")
                return
            }
            conclude(.success(established))
            let writes = pendingWrites
            pendingWrites = []
            for (buffer, promise) in writes { encrypt(buffer, context: context, promise: promise) }
            sendOutput(context: context, promise: nil, flush: true)
            pendingFlush = false
        }
    }

    private func deliverPlaintext(context: ChannelHandlerContext) {
        var plaintext = context.channel.allocator.buffer(capacity: 16 << 10)
        let outcome = connection.readPlaintext(into: &plaintext)
        if plaintext.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(plaintext)) }
        switch outcome {
        case .wantMore:
            break
        case .closedByPeer:
            context.close(promise: nil)
        case .failed(let reason):
            fail(context: context, reason: reason)
        }
    }

    private func fail(context: ChannelHandlerContext, reason: String) {
        guard state != .closed else { return }
        let wasHandshaking = state == .handshaking
        state = .closed
        timeout?.cancel()
        if wasHandshaking {
            onFailure(reason)
            conclude(.failure(TLSHandshakeError(reason: reason)))
        }
        failPendingWrites(TLSHandshakeError(reason: reason))
        context.close(promise: nil)
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        switch state {
        case .handshaking: pendingWrites.append((buffer, promise))
        case .established: encrypt(buffer, context: context, promise: promise)
        case .closed: promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    func flush(context: ChannelHandlerContext) {
        if state == .handshaking {
            pendingFlush = true
        } else {
            context.flush()
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode != .input, state == .established, !sentCloseNotify {
            sentCloseNotify = true
            connection.shutdown()
            sendOutput(context: context, promise: nil, flush: true)
        }
        context.close(mode: mode, promise: promise)
    }

    private func encrypt(_ buffer: ByteBuffer, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        guard buffer.withUnsafeReadableBytes({ connection.writePlaintext($0) }) else {
            promise?.fail(TLSHandshakeError(reason: "TLS could not encrypt a record"))
            fail(context: context, reason: "TLS could not encrypt a record")
            return
        }
        sendOutput(context: context, promise: promise, flush: false)
    }

    /// Writes the ciphertext waiting for the peer (completing `promise` with it, or at once if there is none).
    private func sendOutput(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?, flush: Bool) {
        guard connection.hasOutput else {
            promise?.succeed()
            if flush, state != .handshaking { context.flush() }
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: 0)
        connection.drainOutput(into: &buffer)
        context.write(wrapOutboundOut(buffer), promise: promise)
        if flush { context.flush() }
    }

    private func failPendingWrites(_ error: any Error) {
        let writes = pendingWrites
        pendingWrites = []
        for (_, promise) in writes { promise?.fail(error) }
    }
}

/// A TLS handshake that failed, with OpenSSL's reason (`certificate has expired`, `no application protocol`, …).
public struct TLSHandshakeError: Error, CustomStringConvertible, Sendable {
    /// Why the handshake failed.
    public var reason: String

    /// The reason.
    public var description: String { reason }
}
