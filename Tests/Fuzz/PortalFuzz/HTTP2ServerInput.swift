import NIOCore
import NIOEmbedded
import PortalRPC

@testable import PortalHTTP2

/// The HTTP/2 server's input path: the input is fed to a server connection (nghttp2 underneath) in
/// pieces, as a client would send it, until the connection closes or the input ends; whatever the
/// server answers (SETTINGS, GOAWAY, resets, error trailers) is read and dropped.
enum HTTP2ServerInput {

    static let configuration = ServerConnectionConfiguration(
        routes: [
            "/portal.testing.v1.Echo/Get": RPCRoute(
                MethodDescriptor(service: "portal.testing.v1.Echo", method: "Get", kind: .unary)
            ) { _ in }
        ],
        services: ["portal.testing.v1.Echo"], limits: HTTP2Limits(), maxReceiveMessageBytes: 1 << 16)

    static func run(_ input: [UInt8]) {
        guard let first = input.first else { return }
        let piece = Int(first) * 4 + 1
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        do {
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            try channel.pipeline.syncOperations.addHandler(
                ServerConnection(configuration: configuration, transport: .cleartext))
        } catch {
            fatalError("the server connection could not be set up: \(error)")
        }
        let bytes = Array(input.dropFirst())
        var offset = 0
        while offset < bytes.count, channel.isActive {
            let end = min(offset + piece, bytes.count)
            var buffer = channel.allocator.buffer(capacity: end - offset)
            buffer.writeBytes(bytes[offset..<end])
            do {
                try channel.writeInbound(buffer)
            } catch {
                break
            }
            channel.embeddedEventLoop.run()
            while (try? channel.readOutbound(as: ByteBuffer.self)) ?? nil != nil {}
            offset = end
        }
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
    }
}
