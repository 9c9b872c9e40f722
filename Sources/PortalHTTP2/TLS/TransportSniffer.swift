import NIOCore
import PortalRPC

/// The first handler of a connection to a TLS server: tells a TLS ClientHello from cleartext HTTP/2.
///
/// A TLS record starts with byte 0x16 (handshake), the HTTP/2 preface with `P`. TLS connections get a
/// `TLSHandler`; cleartext ones go straight to HTTP/2, where only health checks are answered (Kubernetes
/// gRPC probes speak cleartext). A connection that sends nothing within `timeout` is closed.
final class TransportSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private static let tlsHandshakeRecord: UInt8 = 0x16

    private let tls: TLSContextSource
    private let timeout: TimeAmount
    private let install: (any Channel, TransportSecurity) throws -> Void
    private let onHandshakeFailure: (String) -> Void
    private var deadline: Scheduled<Void>?

    /// A sniffer that installs HTTP/2 with `install` once the connection's transport is known.
    init(
        tls: TLSContextSource, timeout: TimeAmount = .seconds(10),
        install: @escaping (any Channel, TransportSecurity) throws -> Void,
        onHandshakeFailure: @escaping (String) -> Void
    ) {
        self.tls = tls
        self.timeout = timeout
        self.install = install
        self.onHandshakeFailure = onHandshakeFailure
    }

    func handlerAdded(context: ChannelHandlerContext) {
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return }
        deadline?.cancel()
        do {
            let pipeline = context.pipeline.syncOperations
            if first == Self.tlsHandshakeRecord {
                let install = self.install
                let handler = TLSHandler(
                    connection: try TLSConnection(context: tls.current(), serverName: nil),
                    onEstablished: { channel, established in
                        try install(channel, .tls(clientCertificate: established.clientCertificate))
                    },
                    onFailure: onHandshakeFailure)
                try pipeline.addHandler(handler, position: .after(self))
            } else {
                try install(context.channel, .cleartext)
            }
            context.fireChannelRead(data)
            pipeline.removeHandler(context: context, promise: nil)
        } catch {
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        context.fireChannelInactive()
    }
}
