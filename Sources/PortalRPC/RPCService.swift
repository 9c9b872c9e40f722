/// A service a server hosts: a name and one route per method.
public protocol RPCService: Sendable {
    /// The fully qualified service name.
    var serviceName: String { get }
    /// The methods, each with its byte-level handler.
    var routes: [RPCRoute] { get }
}

/// One method of a hosted service.
public struct RPCRoute: Sendable {
    /// The method.
    public let method: MethodDescriptor
    /// Runs one call; generated code decodes requests and encodes responses around the typed handler.
    public let handler: @Sendable (RPCServerCall) async throws -> Void

    /// Creates a route.
    public init(_ method: MethodDescriptor, handler: @escaping @Sendable (RPCServerCall) async throws -> Void) {
        self.method = method
        self.handler = handler
    }
}

/// The transport's side of one server call, as the runtime sees it.
public protocol ServerCallStream: Sendable {
    /// The next request message, or nil once the client has finished sending.
    func nextRequest() async throws -> [UInt8]?
    /// Sends one response message, waiting while the peer is slow to read.
    func sendResponse(_ message: [UInt8]) async throws
    /// The request of a call that takes one, when it arrived whole before the handler started:
    /// taken without waiting. Nil when the transport holds no such request (read `nextRequest()`).
    func takeCompleteRequest() -> [UInt8]?
    /// Sends the response of a method that sends one, without waiting; false when the transport
    /// has to be waited on (`sendResponse(_:)`).
    func sendOnlyResponse(_ message: [UInt8]) throws -> Bool
}

extension ServerCallStream {
    /// None: requests are read with `nextRequest()`.
    public func takeCompleteRequest() -> [UInt8]? { nil }
    /// Never: responses are sent with `sendResponse(_:)`.
    public func sendOnlyResponse(_ message: [UInt8]) throws -> Bool { false }
}

/// One call as a handler sees it: its context, its requests and a way to respond.
public struct RPCServerCall: Sendable {
    /// The call's context.
    public let context: ServerContext
    /// The transport stream.
    public let stream: any ServerCallStream

    /// Creates a call view over a transport stream.
    public init(context: ServerContext, stream: any ServerCallStream) {
        self.context = context
        self.stream = stream
    }

    /// Receives exactly one request, as unary and server-streaming methods expect.
    public func singleRequest<Request: RPCMessage>(_ type: Request.Type) async throws -> Request {
        if let bytes = stream.takeCompleteRequest() { return try Self.decode(type, bytes) }
        guard let bytes = try await stream.nextRequest() else {
            throw RPCError(.invalidArgument, "request: expected one request message, received none")
        }
        if try await stream.nextRequest() != nil {
            throw RPCError(.invalidArgument, "request: expected one request message, received more")
        }
        return try Self.decode(type, bytes)
    }

    /// The requests of a client- or bidirectional-streaming call.
    public func requestStream<Request: RPCMessage>(_ type: Request.Type) -> RequestStream<Request> {
        RequestStream(stream: stream)
    }

    /// A writer for the responses of a streaming call.
    public func responseWriter<Response: RPCMessage>(_ type: Response.Type) -> ResponseWriter<Response> {
        ResponseWriter(stream: stream)
    }

    /// Sends the single response of a unary or client-streaming call.
    public func respond<Response: RPCMessage>(with response: Response) async throws {
        let bytes = response.rpcBytes()
        if try stream.sendOnlyResponse(bytes) { return }
        try await stream.sendResponse(bytes)
    }

    static func decode<Request: RPCMessage>(_ type: Request.Type, _ bytes: [UInt8]) throws -> Request {
        let request: Request
        do {
            request = try Request(rpcBytes: bytes)
        } catch {
            throw RPCError(.invalidArgument, "request: \(error)", cause: error)
        }
        if let violation = request.fieldLimitViolation() { throw violation.error }
        return request
    }
}

/// The request messages of a streaming call, decoded as they arrive.
public struct RequestStream<Request: RPCMessage>: AsyncSequence, Sendable {
    let stream: any ServerCallStream

    /// Iterates the requests until the client finishes sending.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let stream: any ServerCallStream

        /// The next request, or nil at the end.
        public mutating func next() async throws -> Request? {
            guard let bytes = try await stream.nextRequest() else { return nil }
            return try RPCServerCall.decode(Request.self, bytes)
        }
    }

    /// Starts iterating.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(stream: stream) }
}

/// Sends the responses of a server- or bidirectional-streaming call, with backpressure.
public struct ResponseWriter<Response: RPCMessage>: Sendable {
    let stream: any ServerCallStream

    /// Sends one response; suspends while the client is slow to read.
    public func write(_ response: Response) async throws {
        try await stream.sendResponse(response.rpcBytes())
    }
}
