import Instrumentation
import ServiceContextModule
import W3CTraceContext

/// The key under which a `ServiceContext` carries the W3C trace context of the span its work runs in.
private enum TraceContextKey: ServiceContextKey {
    typealias Value = TraceContext
    static var nameOverride: String? { "traceparent" }
}

extension ServiceContext {
    /// The W3C trace context of the current span, or of the remote caller's before a span starts
    /// (`traceparent` and `tracestate` as received); nil outside any trace.
    public var traceContext: TraceContext? {
        get { self[TraceContextKey.self] }
        set { self[TraceContextKey.self] = newValue }
    }
}

extension TraceID {
    /// The 16 bytes, as OTLP sends them.
    var byteArray: [UInt8] { withUnsafeBytes(of: bytes) { Array($0) } }

    /// The low 8 bytes as a number, uniformly random for a random trace ID: what sampling compares.
    var randomPart: UInt64 {
        withUnsafeBytes(of: bytes) { raw in raw.suffix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
    }
}

extension SpanID {
    /// The 8 bytes, as OTLP sends them.
    var byteArray: [UInt8] { withUnsafeBytes(of: bytes) { Array($0) } }
}
