import Foundation
import PortalRPC

/// One plain HTTP request (not gRPC) for a web listener, its body read in full within the listener's limits.
public struct WebRequest: Sendable {
    /// `GET`, `HEAD`, `POST`, …
    public var method: String
    /// The path, percent-encoded as sent, without the query.
    public var path: String
    /// The query parameters in order, decoded.
    public var query: [(name: String, value: String)]
    /// The header fields, names lower-cased.
    public var headers: [(name: String, value: String)]
    /// The body.
    public var body: [UInt8]
    /// The peer, for logs and per-address limits.
    public var peer: String
    /// How the connection is secured.
    public var transport: TransportSecurity

    /// Creates a request.
    public init(
        method: String, target: String, headers: [(name: String, value: String)], body: [UInt8] = [],
        peer: String = "unknown",
        transport: TransportSecurity = .cleartext
    ) {
        self.method = method
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        path = parts.first.map(String.init) ?? "/"
        query = parts.count > 1 ? FormDecoding.parameters(String(parts[1])) : []
        self.headers = headers.map { (name: $0.name.lowercased(), value: $0.value) }
        self.body = body
        self.peer = peer
        self.transport = transport
    }

    /// The first value of header `name` (lower-case).
    public func header(_ name: String) -> String? {
        headers.first { $0.name == name }?.value
    }

    /// The first value of query parameter `name`.
    public func queryValue(_ name: String) -> String? {
        query.first { $0.name == name }?.value
    }

    /// The media type of `content-type`, lower-cased, without parameters.
    public var mediaType: String? {
        header("content-type").map {
            $0.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        }
    }
}

/// Where a handler writes its response: at once, or as a stream of body parts with backpressure.
public protocol WebResponder: Sendable {
    /// Sends a whole response.
    func respond(status: Int, headers: [(String, String)], body: [UInt8]) async
    /// Starts a streamed response; each part is written and flushed before `write` returns.
    func startStream(status: Int, headers: [(String, String)]) async throws
    /// Writes one part of a streamed body and waits until the connection has taken it.
    func write(_ part: [UInt8]) async throws
    /// Ends a streamed body.
    func finishStream() async
    /// Breaks off a streamed body, so the client sees an incomplete response rather than a short one.
    func abortStream() async
}

/// `application/x-www-form-urlencoded` decoding, as URL query strings use it.
enum FormDecoding {
    /// `a=1&b=x%20y` → [("a", "1"), ("b", "x y")]; `+` is a space.
    static func parameters(_ query: String) -> [(name: String, value: String)] {
        query.split(separator: "&").compactMap { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = parts.first.flatMap({ percentDecoded($0) }), !name.isEmpty else { return nil }
            let value = parts.count > 1 ? percentDecoded(parts[1]) ?? "" : ""
            return (name, value)
        }
    }

    /// Percent-decodes `text` (`+` as space); nil when an escape is malformed or the bytes are not UTF-8.
    static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"): bytes.append(0x20)
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(GRPCStatusHeaders.hexValue),
                    let low = iterator.next().flatMap(GRPCStatusHeaders.hexValue)
                else { return nil }
                bytes.append(high << 4 | low)
            default: bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}

/// Answers plain HTTP requests: what a web listener runs for each request, over HTTP/1.1 or HTTP/2.
public typealias WebRequestHandler = @Sendable (WebRequest, any WebResponder) async -> Void

/// Where one plain response stands — not begun, streaming, or ended — for the responders of both
/// HTTP versions, so each response is answered once and streamed parts only follow a streamed head.
public final class ResponseProgress: Sendable {
    private enum Phase { case idle, streaming, ended }

    private let phase = Locked(Phase.idle)

    /// A response not yet begun.
    public init() {}

    /// Claims the response for a whole answer; false when one has already begun.
    public func beginWhole() -> Bool {
        phase.withLock { phase in
            defer { phase = .ended }
            return phase == .idle
        }
    }

    /// Claims the response for a streamed answer; throws when one has already begun.
    public func beginStream() throws {
        let began = phase.withLock { phase in
            guard phase == .idle else { return false }
            phase = .streaming
            return true
        }
        if !began { throw RPCError(.internal, "the response has already started") }
    }

    /// Throws unless a streamed answer is open.
    public func requireStream() throws {
        guard phase.withLock({ $0 == .streaming }) else { throw RPCError(.internal, "no streamed response is open") }
    }

    /// Ends a streamed answer; false when none was open.
    public func endStream() -> Bool {
        phase.withLock { phase in
            defer { phase = .ended }
            return phase == .streaming
        }
    }

    /// Marks the response ended, however far it got.
    public func abandon() {
        phase.withLock { $0 = .ended }
    }

    /// Ends a response its application left open (it should not), so the connection is never stuck:
    /// a 500 when nothing was sent, a broken-off stream otherwise.
    public func ensureEnded(_ responder: some WebResponder) async {
        switch phase.withLock({ $0 }) {
        case .idle:
            await responder.respond(
                status: 500, headers: [("content-type", "text/plain; charset=utf-8")], body: Array("no response\n".utf8)
            )
        case .streaming: await responder.abortStream()
        case .ended: break
        }
    }
}
