import Metrics
import NIOCore
import PortalRPC

/// A server's connections as metrics: open now, accepted by transport, and failed TLS handshakes.
struct ConnectionMetrics: Sendable {
    private let open = Meter(label: "portal_connections_open")
    private let acceptedTLS = Counter(label: "portal_connections_accepted_total", dimensions: [("transport", "tls")])
    private let acceptedCleartext = Counter(
        label: "portal_connections_accepted_total", dimensions: [("transport", "cleartext")])
    private let failedHandshakes = Counter(label: "portal_tls_handshake_failures_total")

    /// Counts a connection that reached HTTP/2, open until `channel` closes.
    func opened(_ transport: TransportSecurity, channel: any Channel) {
        (transport == .cleartext ? acceptedCleartext : acceptedTLS).increment()
        open.increment()
        channel.closeFuture.whenComplete { [open] _ in open.decrement() }
    }

    /// Counts a TLS handshake that failed.
    func handshakeFailed() {
        failedHandshakes.increment()
    }
}
