import PortalHTTP2
import PortalRPC

/// One call's transport side on the web listener: its single request, and where its responses go.
final class WebCallStream: ServerCallStream, Sendable {
    private let request: Locked<[UInt8]?>
    private let onResponse: @Sendable ([UInt8]) async throws -> Void

    /// A stream delivering `request` once and handing every response to `onResponse`.
    init(request: [UInt8], onResponse: @escaping @Sendable ([UInt8]) async throws -> Void) {
        self.request = Locked(request)
        self.onResponse = onResponse
    }

    func nextRequest() async throws -> [UInt8]? {
        takeCompleteRequest()
    }

    /// The request, whole from the start: a web call carries exactly one.
    func takeCompleteRequest() -> [UInt8]? {
        request.withLock { request in
            defer { request = nil }
            return request
        }
    }

    func sendResponse(_ message: [UInt8]) async throws {
        try await onResponse(message)
    }
}

/// Runs calls that arrive on the web listener through the same routes, interceptors and limits as gRPC.
struct WebCallRunner: Sendable {
    /// The routes by `/service/method`.
    let routes: [String: RPCRoute]
    /// Interceptors and handler invocation, shared with the gRPC transport.
    let executor: ServerCallExecutor

    /// Runs `route` with one request; `onResponse` receives each response message. Returns the
    /// call's error, nil on success. The call ends with `DEADLINE_EXCEEDED` when its deadline passes.
    func run(
        _ route: RPCRoute, request: [UInt8], context: ServerContext,
        onResponse: @escaping @Sendable ([UInt8]) async throws -> Void
    ) async -> RPCError? {
        let call = RPCServerCall(context: context, stream: WebCallStream(request: request, onResponse: onResponse))
        let executor = executor
        return await withTaskGroup(of: RPCError?.self) { group in
            group.addTask { await executor.execute(route, call: call) }
            if let deadline = context.deadline {
                group.addTask {
                    try? await Task.sleep(until: deadline, clock: .continuous)
                    return Task.isCancelled ? nil : RPCError(.deadlineExceeded, "deadline exceeded")
                }
            }
            let outcome = await group.next() ?? nil
            group.cancelAll()
            return outcome
        }
    }

    /// The metadata a handler sees for a web request: its headers, less the transport's own and the
    /// browser's, with the session cookie as a bearer token when no `authorization` header is sent.
    static func metadata(of request: WebRequest, sessionToken: String?) -> Metadata {
        var metadata = Metadata()
        for (name, value) in request.headers where !isTransportHeader(name) {
            if name.hasSuffix("-bin") {
                metadata.addBinary(Base64.decode(value), forKey: name)
            } else {
                metadata.addString(value, forKey: name)
            }
        }
        if request.header("authorization") == nil, let sessionToken {
            metadata.addString("Bearer \(sessionToken)", forKey: "authorization")
        }
        return metadata
    }

    private static let transportHeaders: Set<String> = [
        "host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
        "content-type",
        "content-length", "content-encoding", "accept", "accept-encoding", "accept-language", "cookie", "origin",
        "referer",
        "cache-control", "pragma", "priority", "dnt", "if-none-match", "if-modified-since",
    ]

    private static func isTransportHeader(_ name: String) -> Bool {
        transportHeaders.contains(name) || name.hasPrefix("connect-") || name.hasPrefix("sec-")
            || name.hasPrefix("grpc-")
            || name.hasPrefix("x-portal-") || name.hasPrefix(":")
    }
}
