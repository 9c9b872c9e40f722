import Instrumentation
import Tracing
import W3CTraceContext

/// The portal's tracer: W3C trace context in and out (`traceparent`, `tracestate`), a sampling
/// decision per trace (parent-based: a trace's root decides by trace id and ratio, its other spans
/// follow their parent), and ended spans handed to a sink (the OTLP exporter).
public final class PortalTracer: Tracer {
    /// The spans this tracer makes.
    public typealias Span = PortalSpan

    private let sampler: TraceIDRatioSampler
    private let sink: any SpanSink
    private let ids = IDGenerator()

    /// A tracer sampling `ratio` of new traces (0…1) and handing their spans to `sink`.
    public init(samplingRatio ratio: Double, sink: any SpanSink) {
        sampler = TraceIDRatioSampler(ratio: ratio)
        self.sink = sink
    }

    /// Starts a span, child of the span (or remote caller) in `context`, or the root of a new trace.
    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> PortalSpan {
        var context = context()
        let parent = context.traceContext
        let traceID = parent?.traceID ?? ids.traceID()
        let sampled = parent.map { $0.flags.contains(.sampled) } ?? sampler.samples(traceID)
        let own = TraceContext(
            traceID: traceID, spanID: ids.spanID(), flags: sampled ? .sampled : [],
            state: parent?.state ?? TraceState())
        context.traceContext = own
        return PortalSpan(
            name: operationName, context: context, traceContext: own, parentSpanID: parent?.spanID, kind: kind,
            startNanoseconds: instant().nanosecondsSinceEpoch, sink: sampled ? sink : nil)
    }

    /// Nothing to do: the exporter sends on its own schedule and at shutdown.
    public func forceFlush() {}

    /// Reads the caller's `traceparent` (and `tracestate`) into `context`; an invalid one is ignored,
    /// so the call starts a trace of its own.
    public func extract<Carrier, Extract: Extractor>(
        _ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract
    ) where Extract.Carrier == Carrier {
        guard let parent = extractor.extract(key: "traceparent", from: carrier),
            let trace = try? TraceContext(
                traceParentHeaderValue: parent,
                traceStateHeaderValue: extractor.extract(key: "tracestate", from: carrier))
        else { return }
        context.traceContext = trace
    }

    /// Writes `context`'s trace as `traceparent` (and `tracestate`, when it has one).
    public func inject<Carrier, Inject: Injector>(
        _ context: ServiceContext, into carrier: inout Carrier, using injector: Inject
    ) where Inject.Carrier == Carrier {
        guard let trace = context.traceContext else { return }
        injector.inject(trace.traceParentHeaderValue, forKey: "traceparent", into: &carrier)
        if let state = trace.traceStateHeaderValue, !state.isEmpty {
            injector.inject(state, forKey: "tracestate", into: &carrier)
        }
    }
}

/// Samples a fixed share of traces by their (random) trace id, so every service that starts a
/// span of the same trace decides alike.
struct TraceIDRatioSampler: Sendable {
    private let bound: UInt64?

    /// Samples `ratio` of traces (clamped to 0…1).
    init(ratio: Double) {
        let ratio = min(max(ratio, 0), 1)
        bound = ratio >= 1 ? nil : UInt64(ratio * Double(UInt64.max))
    }

    /// Whether a trace with this id is recorded.
    func samples(_ traceID: TraceID) -> Bool {
        guard let bound else { return true }
        return traceID.randomPart < bound
    }
}
