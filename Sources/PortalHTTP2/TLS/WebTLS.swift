import NIOCore
import PortalRPC

/// Server-side TLS for a web listener's connections (HTTP/2 or HTTP/1.1 inside, by ALPN), with the
/// same certificate handling and reloading as gRPC servers.
public enum WebTLS {
    /// Adds TLS at the front of `channel`'s pipeline; call on its event loop. `onEstablished` runs
    /// once the handshake succeeded, before any plaintext is read, with whether ALPN chose HTTP/2;
    /// `onFailure` gets the reason of a failed one.
    public static func addServerHandler(
        to channel: any Channel, source: TLSContextSource,
        onEstablished: @escaping (any Channel, TransportSecurity, _ http2: Bool) throws -> Void,
        onFailure: @escaping (String) -> Void
    ) throws {
        let handler = TLSHandler(
            connection: try TLSConnection(context: source.current(), serverName: nil), requiresHTTP2: false,
            onEstablished: { channel, established in
                try onEstablished(
                    channel, .tls(clientCertificate: established.clientCertificate),
                    established.applicationProtocol == "h2")
            },
            onFailure: onFailure)
        try channel.pipeline.syncOperations.addHandler(handler, position: .first)
    }
}
