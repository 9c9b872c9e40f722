import PortalAPI
import PortalRPC
import Synchronization

/// `portal.testing.v1.Echo`: exercises every RPC shape for the runtime's interoperability tests.
public final class EchoService: Portal_Testing_V1_EchoService {
    public typealias Request = Portal_Testing_V1_EchoRequest
    public typealias Response = Portal_Testing_V1_EchoResponse

    private struct Counters {
        var started = 0
        var cancelled = 0
        var active = 0
    }

    private let counters = Locked(Counters())

    /// Creates the service.
    public init() {}

    public func get(request: Request, context: ServerContext) async throws -> Response {
        try await observed(context) {
            try await pause(milliseconds: request.delayMs)
            echoMetadata(context)
            try failIfAsked(request)
            var response = Response()
            response.message = request.message
            response.payload = request.responseSize > 0 ? payload(request.responseSize) : request.payload
            response.seenMetadata = seenMetadata(context.requestMetadata)
            return response
        }
    }

    public func expand(request: Request, responses: ResponseWriter<Response>, context: ServerContext) async throws {
        try await observed(context) {
            echoMetadata(context)
            let body = payload(request.responseSize)
            for index in 0..<max(0, request.responseCount) {
                try await pause(milliseconds: request.delayMs)
                var response = Response()
                response.message = request.message
                response.index = index
                response.payload = body
                try await responses.write(response)
            }
            try failIfAsked(request)
        }
    }

    public func collect(requests: RequestStream<Request>, context: ServerContext) async throws -> Response {
        try await observed(context) {
            echoMetadata(context)
            var messages: [String] = []
            var response = Response()
            for try await request in requests {
                messages.append(request.message)
                response.payload += request.payload
            }
            response.message = messages.joined(separator: " ")
            response.index = Int32(messages.count)
            return response
        }
    }

    public func update(
        requests: RequestStream<Request>, responses: ResponseWriter<Response>, context: ServerContext
    ) async throws {
        try await observed(context) {
            echoMetadata(context)
            var index: Int32 = 0
            for try await request in requests {
                try failIfAsked(request)
                var response = Response()
                response.message = request.message
                response.index = index
                response.payload = request.payload
                try await responses.write(response)
                index += 1
            }
        }
    }

    public func roundTrip(
        request: Portal_Testing_V1_AllKinds, context: ServerContext
    ) async throws -> Portal_Testing_V1_AllKinds {
        request
    }

    public func stats(
        request: Portal_Testing_V1_StatsRequest, context: ServerContext
    ) async throws -> Portal_Testing_V1_StatsResponse {
        let counters = counters.withLock { $0 }
        var response = Portal_Testing_V1_StatsResponse()
        response.callsStarted = Int64(counters.started)
        response.callsCancelled = Int64(counters.cancelled)
        response.callsActive = Int64(counters.active)
        return response
    }

    /// Counts the call, and whether cancellation (client reset, deadline) reached it.
    private func observed<Result>(_ context: ServerContext, _ body: () async throws -> Result) async throws -> Result {
        counters.withLock {
            $0.started += 1
            $0.active += 1
        }
        defer { counters.withLock { $0.active -= 1 } }
        do {
            return try await body()
        } catch {
            if Task.isCancelled || error is CancellationError || (error as? RPCError)?.code == .cancelled {
                counters.withLock { $0.cancelled += 1 }
            }
            throw error
        }
    }

    private func pause(milliseconds: Int32) async throws {
        if milliseconds > 0 { try await Task.sleep(for: .milliseconds(Int(milliseconds))) }
    }

    private func payload(_ size: Int32) -> [UInt8] {
        [UInt8](repeating: UInt8(ascii: "a"), count: Int(max(0, size)))
    }

    private func failIfAsked(_ request: Request) throws {
        guard request.failWithCode != 0 else { return }
        let code = RPCStatusCode(wireValue: Int(request.failWithCode))
        throw RPCError(
            code, request.message,
            details: [
                RPCErrorDetail(
                    typeURL: "type.googleapis.com/portal.testing.v1.EchoRequest", value: request.serializedBytes())
            ])
    }

    /// Echoes `x-echo-initial*` as response headers and `x-echo-trailing*` as trailers.
    private func echoMetadata(_ context: ServerContext) {
        var headers = Metadata()
        var trailers = Metadata()
        for entry in context.requestMetadata {
            if entry.key.hasPrefix("x-echo-initial") {
                headers.add(entry)
            } else if entry.key.hasPrefix("x-echo-trailing") {
                trailers.add(entry)
            }
        }
        if !headers.isEmpty { context.responseHeaders.add(contentsOf: headers) }
        if !trailers.isEmpty { context.responseTrailers.add(contentsOf: trailers) }
    }

    /// Every `x-` metadata entry; binary values as padded base64.
    private func seenMetadata(_ metadata: Metadata) -> [String: String] {
        var seen: [String: String] = [:]
        for entry in metadata where entry.key.hasPrefix("x-") {
            switch entry.value {
            case .string(let value): seen[entry.key] = value
            case .binary(let value): seen[entry.key] = Base64.encode(value, padding: true)
            }
        }
        return seen
    }
}
