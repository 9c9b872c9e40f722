/// Options for one client call.
public struct CallOptions: Sendable {
    /// How long the call may take; sent as `grpc-timeout` and enforced locally too.
    public var timeout: Duration?
    /// The largest response message accepted; larger ones fail the call with `RESOURCE_EXHAUSTED`.
    public var maxResponseMessageBytes: Int?

    /// Creates options; nil values use the channel's defaults.
    public init(timeout: Duration? = nil, maxResponseMessageBytes: Int? = nil) {
        self.timeout = timeout
        self.maxResponseMessageBytes = maxResponseMessageBytes
    }
}

/// A client connection that can start calls; implemented by the HTTP/2 transport.
public protocol RPCChannel: Sendable {
    /// Starts a call: the request headers go out, requests and responses then flow through the result.
    func openCall(
        _ method: MethodDescriptor, metadata: Metadata, options: CallOptions
    ) async throws -> any ClientCallStream
}

/// The transport's side of one client call.
public protocol ClientCallStream: Sendable {
    /// Sends one request message, waiting while the server is slow to read.
    func send(_ message: [UInt8]) async throws
    /// Tells the server no more requests follow.
    func finishSending() async throws
    /// The next response message, nil once the call ended with status OK; throws `RPCError` otherwise.
    func receive() async throws -> [UInt8]?
    /// The server's response headers (empty for a trailers-only response).
    func responseHeaders() async throws -> Metadata
    /// The server's trailers, once the call has ended.
    func trailers() async throws -> Metadata
    /// Abandons the call (RST_STREAM CANCEL); pending operations fail with `CANCELLED`.
    func cancel()
}

extension RPCChannel {
    /// Makes a unary call.
    public func unary<Request: RPCMessage, Response: RPCMessage>(
        _ method: MethodDescriptor, request: Request, response: Response.Type, metadata: Metadata, options: CallOptions
    ) async throws -> Response {
        let call = try await openCall(method, metadata: metadata, options: options)
        return try await withTaskCancellationHandler {
            try await call.send(request.rpcBytes())
            try await call.finishSending()
            return try await Self.single(Response.self, from: call)
        } onCancel: {
            call.cancel()
        }
    }

    /// Makes a server-streaming call; responses arrive through the returned sequence.
    public func serverStreaming<Request: RPCMessage, Response: RPCMessage>(
        _ method: MethodDescriptor, request: Request, response: Response.Type, metadata: Metadata, options: CallOptions
    ) async throws -> ResponseStream<Response> {
        let call = try await openCall(method, metadata: metadata, options: options)
        try await withTaskCancellationHandler {
            try await call.send(request.rpcBytes())
            try await call.finishSending()
        } onCancel: {
            call.cancel()
        }
        return ResponseStream(call: call)
    }

    /// Makes a client-streaming call: `requests` sends, then the single response is returned.
    public func clientStreaming<Request: RPCMessage, Response: RPCMessage>(
        _ method: MethodDescriptor, response: Response.Type, metadata: Metadata, options: CallOptions,
        requests: (RequestWriter<Request>) async throws -> Void
    ) async throws -> Response {
        let call = try await openCall(method, metadata: metadata, options: options)
        return try await withTaskCancellationHandler {
            do {
                try await requests(RequestWriter(call: call))
            } catch {
                call.cancel()
                throw error
            }
            try await call.finishSending()
            return try await Self.single(Response.self, from: call)
        } onCancel: {
            call.cancel()
        }
    }

    /// Makes a bidirectional-streaming call scoped to `body`; the call is cancelled if `body` leaves early.
    public func bidirectionalStreaming<Request: RPCMessage, Response: RPCMessage, Result: Sendable>(
        _ method: MethodDescriptor, metadata: Metadata, options: CallOptions,
        _ body: (BidirectionalCall<Request, Response>) async throws -> Result
    ) async throws -> Result {
        let call = try await openCall(method, metadata: metadata, options: options)
        return try await withTaskCancellationHandler {
            defer { call.cancel() }
            return try await body(BidirectionalCall(call: call))
        } onCancel: {
            call.cancel()
        }
    }

    private static func single<Response: RPCMessage>(
        _ type: Response.Type, from call: any ClientCallStream
    ) async throws -> Response {
        guard let bytes = try await call.receive() else {
            throw RPCError(.internal, "response: the server ended the call without a response message")
        }
        let response = try decodeResponse(type, bytes)
        if try await call.receive() != nil {
            throw RPCError(.internal, "response: the server sent more than one response message")
        }
        return response
    }
}

func decodeResponse<Response: RPCMessage>(_ type: Response.Type, _ bytes: [UInt8]) throws -> Response {
    do {
        return try Response(rpcBytes: bytes)
    } catch {
        throw RPCError(.internal, "response: \(error)", cause: error)
    }
}

/// Sends the requests of a client-streaming call.
public struct RequestWriter<Request: RPCMessage>: Sendable {
    let call: any ClientCallStream

    /// Sends one request; suspends while the server is slow to read.
    public func write(_ request: Request) async throws {
        try await call.send(request.rpcBytes())
    }
}

/// The responses of a server-streaming call; abandoning the sequence cancels the call.
public struct ResponseStream<Response: RPCMessage>: AsyncSequence, Sendable {
    private let owner: CallOwner

    init(call: any ClientCallStream) {
        owner = CallOwner(call: call)
    }

    /// The server's response headers.
    public func responseHeaders() async throws -> Metadata { try await owner.call.responseHeaders() }

    /// The server's trailers, once the stream has ended.
    public func trailers() async throws -> Metadata { try await owner.call.trailers() }

    /// Iterates the responses; throws `RPCError` when the call ends with a non-OK status.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let owner: CallOwner

        /// The next response, or nil once the call ended with OK.
        public mutating func next() async throws -> Response? {
            let call = owner.call
            return try await withTaskCancellationHandler {
                guard let bytes = try await call.receive() else { return nil }
                return try decodeResponse(Response.self, bytes)
            } onCancel: {
                call.cancel()
            }
        }
    }

    /// Starts iterating.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(owner: owner) }
}

/// Cancels the call when the last reference to a response stream goes away.
final class CallOwner: Sendable {
    let call: any ClientCallStream

    init(call: any ClientCallStream) { self.call = call }

    deinit { call.cancel() }
}

/// A bidirectional-streaming call in progress.
public struct BidirectionalCall<Request: RPCMessage, Response: RPCMessage>: Sendable {
    let call: any ClientCallStream

    /// Sends one request.
    public func send(_ request: Request) async throws { try await call.send(request.rpcBytes()) }

    /// Tells the server no more requests follow.
    public func finishSending() async throws { try await call.finishSending() }

    /// The next response, or nil once the call ended with OK.
    public func receive() async throws -> Response? {
        guard let bytes = try await call.receive() else { return nil }
        return try decodeResponse(Response.self, bytes)
    }

    /// The server's response headers.
    public func responseHeaders() async throws -> Metadata { try await call.responseHeaders() }
}
