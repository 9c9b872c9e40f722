import Instrumentation
import PortalRPC
import Tracing

/// Calls through `channel` as client spans: each call is a span, child of the span the caller runs
/// in, that ends when the call does; the call carries the span as `traceparent`, so the server's
/// span becomes its child.
public struct TracedChannel: RPCChannel {
    private let channel: any RPCChannel
    private let tracer: PortalTracer
    private let peer: String

    /// `channel`, traced by `tracer`; `peer` (`host:port`) is recorded as `server.address`.
    public init(_ channel: any RPCChannel, tracer: PortalTracer, peer: String) {
        self.channel = channel
        self.tracer = tracer
        self.peer = peer
    }

    /// Starts the call inside a new client span.
    public func openCall(
        _ method: MethodDescriptor, metadata: Metadata, options: CallOptions
    ) async throws -> any ClientCallStream {
        let span = tracer.startSpan(method.description, context: ServiceContext.current ?? .topLevel, ofKind: .client)
        if span.isRecording {
            var attributes = SpanAttributes.call(method)
            attributes["server.address"] = peer
            span.attributes = attributes
        }
        var metadata = metadata
        tracer.inject(span.context, into: &metadata, using: MetadataInjector())
        do {
            return TracedCall(
                stream: try await channel.openCall(method, metadata: metadata, options: options), span: span)
        } catch {
            TracedCall.end(span, error: error)
            throw error
        }
    }
}

/// A client call whose span ends with it: when the last response arrived, the call failed, or the
/// caller cancelled it.
private final class TracedCall: ClientCallStream {
    private let stream: any ClientCallStream
    private let span: PortalSpan
    private let ended = Locked(false)

    init(stream: any ClientCallStream, span: PortalSpan) {
        self.stream = stream
        self.span = span
    }

    func send(_ message: [UInt8]) async throws {
        do { try await stream.send(message) } catch {
            finish(error)
            throw error
        }
    }

    func finishSending() async throws {
        do { try await stream.finishSending() } catch {
            finish(error)
            throw error
        }
    }

    func receive() async throws -> [UInt8]? {
        do {
            let message = try await stream.receive()
            if message == nil { finish(nil) }
            return message
        } catch {
            finish(error)
            throw error
        }
    }

    func responseHeaders() async throws -> Metadata { try await stream.responseHeaders() }

    func trailers() async throws -> Metadata { try await stream.trailers() }

    func cancel() {
        finish(RPCError(.cancelled, "call cancelled"))
        stream.cancel()
    }

    /// Ends the span, once.
    private func finish(_ error: (any Error)?) {
        guard
            ended.withLock({ ended in
                defer { ended = true }
                return !ended
            })
        else { return }
        Self.end(span, error: error)
    }

    /// Ends `span` with OK, or with the call's status (any status but OK marks a client span an error).
    static func end(_ span: PortalSpan, error: (any Error)?) {
        if span.isRecording {
            let status = (error as? RPCError) ?? error.map { RPCError(.unknown, String(describing: $0)) }
            span.attributes["rpc.grpc.status_code"] = (status?.code ?? .ok).rawValue
            if let status { span.setStatus(SpanStatus(code: .error, message: status.message)) }
        }
        span.end()
    }
}
