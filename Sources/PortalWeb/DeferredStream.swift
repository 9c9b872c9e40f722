import PortalHTTP2
import PortalRPC

/// A streamed response whose head goes out with its first part (or at its end, when it has none), so
/// a call that fails before sending anything can still be answered with a status of its own.
final class DeferredStream<Responder: WebResponder>: Sendable {
    let responder: Responder
    let status: Int
    /// The head's fields, or a function giving them when the stream opens (response metadata may
    /// be set by the handler until then).
    let headers: @Sendable () -> [(String, String)]
    private let opened = Locked(false)

    init(responder: Responder, status: Int = 200, headers: @escaping @Sendable () -> [(String, String)]) {
        self.responder = responder
        self.status = status
        self.headers = headers
    }

    /// Whether the head has gone out.
    var isOpen: Bool { opened.withLock { $0 } }

    /// Sends the head, the first time only.
    func open() async throws {
        guard
            opened.withLock({ opened in
                defer { opened = true }
                return !opened
            })
        else { return }
        try await responder.startStream(status: status, headers: headers())
    }

    /// Opens the stream if needed and writes one part.
    func write(_ part: [UInt8]) async throws {
        try await open()
        try await responder.write(part)
    }
}
