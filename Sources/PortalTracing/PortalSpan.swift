import Instrumentation
import PortalRPC
import Tracing
import W3CTraceContext

/// A span of `PortalTracer`: recorded, and handed to the exporter when it ends, if its trace is
/// sampled; otherwise only carried, so that the calls it makes pass the trace (and the decision) on.
public final class PortalSpan: Span {
    /// The context this span's work runs in: the caller's, with this span's trace context.
    public let context: ServiceContext
    /// Whether the span is recorded (its trace is sampled).
    public let isRecording: Bool
    private let traceContext: TraceContext
    private let parentSpanID: SpanID?
    private let kind: SpanKind
    private let startNanoseconds: UInt64
    private let sink: (any SpanSink)?
    private let state: Locked<State>

    private struct State {
        var name: String
        var attributes: SpanAttributes = [:]
        var events: [SpanEvent] = []
        var links: [SpanLink] = []
        var status: SpanStatus?
        var ended = false
    }

    init(
        name: String, context: ServiceContext, traceContext: TraceContext, parentSpanID: SpanID?, kind: SpanKind,
        startNanoseconds: UInt64, sink: (any SpanSink)?
    ) {
        self.context = context
        self.traceContext = traceContext
        self.parentSpanID = parentSpanID
        self.kind = kind
        self.startNanoseconds = startNanoseconds
        self.sink = sink
        isRecording = sink != nil
        state = Locked(State(name: name))
    }

    /// What the span stands for, such as `portal.gateway.v1.PortalService/Activate`.
    public var operationName: String {
        get { state.withLock { $0.name } }
        set { if isRecording { state.withLock { $0.name = newValue } } }
    }

    /// The span's attributes.
    public var attributes: SpanAttributes {
        get { state.withLock { $0.attributes } }
        set { if isRecording { state.withLock { $0.attributes = newValue } } }
    }

    /// Sets the outcome; an `ok` status is final, as OpenTelemetry asks.
    public func setStatus(_ status: SpanStatus) {
        guard isRecording else { return }
        state.withLock { state in
            if state.status?.code != .ok { state.status = status }
        }
    }

    /// Adds a timed event.
    public func addEvent(_ event: SpanEvent) {
        guard isRecording else { return }
        state.withLock { $0.events.append(event) }
    }

    /// Adds an `exception` event for `error`, as OpenTelemetry's semantic conventions name it.
    public func recordError<Instant: TracerInstant>(
        _ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant
    ) {
        guard isRecording else { return }
        var attributes = attributes
        attributes["exception.type"] = String(describing: type(of: error))
        attributes["exception.message"] = String(describing: error)
        addEvent(SpanEvent(name: "exception", at: instant(), attributes: attributes))
    }

    /// Links another span (the change an outbox message records, for its delivery).
    public func addLink(_ link: SpanLink) {
        guard isRecording else { return }
        state.withLock { $0.links.append(link) }
    }

    /// Ends the span; a recorded span goes to the exporter, once.
    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        guard let sink else { return }
        let endNanoseconds = instant().nanosecondsSinceEpoch
        let finished = state.withLock { state -> FinishedSpan? in
            guard !state.ended else { return nil }
            state.ended = true
            return FinishedSpan(
                name: state.name, kind: kind, traceContext: traceContext, parentSpanID: parentSpanID,
                startNanoseconds: startNanoseconds, endNanoseconds: endNanoseconds, attributes: state.attributes,
                events: state.events, links: state.links, status: state.status)
        }
        if let finished { sink.record(finished) }
    }
}

/// A span that has ended, as the exporter sends it.
public struct FinishedSpan: Sendable {
    /// The operation.
    public var name: String
    /// Server, client, internal, producer or consumer.
    public var kind: SpanKind
    /// The span's trace id, span id, flags and trace state.
    public var traceContext: TraceContext
    /// The parent span in the same trace; nil for a trace's root.
    public var parentSpanID: SpanID?
    /// When it started, in nanoseconds since 1970.
    public var startNanoseconds: UInt64
    /// When it ended, in nanoseconds since 1970.
    public var endNanoseconds: UInt64
    /// Its attributes.
    public var attributes: SpanAttributes
    /// Its events.
    public var events: [SpanEvent]
    /// Spans it links to (in this trace or another).
    public var links: [SpanLink]
    /// Its outcome, when set.
    public var status: SpanStatus?
}

/// Where ended spans go: the exporter.
public protocol SpanSink: Sendable {
    /// Takes an ended span; never waits (a full queue drops it).
    func record(_ span: FinishedSpan)
}
