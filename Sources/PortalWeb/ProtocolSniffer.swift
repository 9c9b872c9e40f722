import NIOCore

/// The first handler of a cleartext web connection: HTTP/2 with prior knowledge (its preface starts
/// with `PRI`, which no HTTP/1.1 method does) or HTTP/1.1, decided from the first bytes.
final class ProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private static let preface = Array("PRI".utf8)
    private let install: (any Channel, _ http2: Bool) throws -> Void
    private var buffered: ByteBuffer?

    /// A sniffer that installs the protocol's handlers with `install` once it knows which.
    init(install: @escaping (any Channel, _ http2: Bool) throws -> Void) {
        self.install = install
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffered != nil {
            buffered!.writeBuffer(&incoming)
        } else {
            buffered = incoming
        }
        guard let bytes = buffered,
            bytes.readableBytes >= Self.preface.count || !Self.preface.starts(with: bytes.readableBytesView)
        else {
            return  // too few bytes to tell yet
        }
        buffered = nil
        do {
            try install(context.channel, bytes.readableBytesView.starts(with: Self.preface))
            context.fireChannelRead(wrapInboundOut(bytes))
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        } catch {
            context.close(promise: nil)
        }
    }
}
