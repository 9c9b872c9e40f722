import Logging
import Metrics
import PortalAPI
import PortalRPC
import ServiceLifecycle

/// Sends ended spans to an OpenTelemetry collector over OTLP/gRPC (`TraceService/Export`), in
/// batches, from a bounded queue: when the collector is slow or gone, spans beyond the queue are
/// dropped and counted (`portal_trace_spans_dropped_total{reason="queue_full"}`), never waited for,
/// so tracing cannot slow a call down. Batches the collector refuses or that time out are dropped
/// too (`reason="export_failed"`); what arrives is counted in `portal_trace_spans_exported_total`.
/// A lifecycle service: at graceful shutdown it sends what is queued once more, then stops. List it
/// before the services whose spans it sends, so it stops after them.
public final class OTLPExporter: SpanSink, Service {
    /// How spans are batched and sent.
    public struct Configuration: Sendable {
        /// Spans waiting at most; more are dropped.
        public var maxQueueSize = 2048
        /// Spans per export call at most.
        public var maxBatchSize = 512
        /// How long a span waits at most before its batch goes out.
        public var scheduleDelay: Duration = .seconds(1)
        /// How long one export call may take.
        public var exportTimeout: Duration = .seconds(5)

        /// The defaults.
        public init() {}
    }

    private let client: Opentelemetry_Proto_Collector_Trace_V1_TraceClient
    private let closeChannel: @Sendable () async -> Void
    private let resource: OTLPResource
    private let configuration: Configuration
    private let logger: Logger
    private let queue = Locked<[FinishedSpan]>([])
    private let wakeUps: AsyncStream<Void>
    private let wakeUpSink: AsyncStream<Void>.Continuation
    private let failures = Locked(0)
    private let exported = Counter(label: "portal_trace_spans_exported_total")
    private let droppedQueueFull = Counter(
        label: "portal_trace_spans_dropped_total", dimensions: [("reason", "queue_full")])
    private let droppedExportFailed = Counter(
        label: "portal_trace_spans_dropped_total", dimensions: [("reason", "export_failed")])

    /// An exporter calling the collector over `channel` (closed by `closeChannel` when it stops),
    /// describing the process as `resource` attributes (`service.name` and the like).
    public init(
        channel: any RPCChannel, closeChannel: @escaping @Sendable () async -> Void,
        resource attributes: [(String, String)], configuration: Configuration = .init(), logger: Logger
    ) {
        client = Opentelemetry_Proto_Collector_Trace_V1_TraceClient(channel: channel)
        self.closeChannel = closeChannel
        var resource = OTLPResource()
        resource.attributes = attributes.map { OTLPKeyValue($0.0, $0.1) }
        self.resource = resource
        self.configuration = configuration
        self.logger = logger
        (wakeUps, wakeUpSink) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues an ended span, or drops it when the queue is full.
    public func record(_ span: FinishedSpan) {
        let (maxQueue, maxBatch) = (configuration.maxQueueSize, configuration.maxBatchSize)
        let queued = queue.withLock { queue -> Int? in
            guard queue.count < maxQueue else { return nil }
            queue.append(span)
            return queue.count
        }
        guard let queued else {
            droppedQueueFull.increment()
            return
        }
        if queued >= maxBatch { wakeUpSink.yield() }
    }

    /// Spans waiting to be sent.
    var queuedCount: Int { queue.withLock { $0.count } }

    /// Sends batches every `scheduleDelay` (sooner when a batch fills) until graceful shutdown,
    /// then what is left, once.
    public func run() async throws {
        let (delay, wakeUpSink) = (configuration.scheduleDelay, wakeUpSink)
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    while (try? await Task.sleep(for: delay)) != nil { wakeUpSink.yield() }
                }
                for await _ in wakeUps { await sendQueued() }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            wakeUpSink.finish()
        }
        await sendQueued()
        await closeChannel()
    }

    /// Sends the queue in batches; stops at the first batch that fails (the rest waits for the next turn).
    private func sendQueued() async {
        let maxBatch = configuration.maxBatchSize
        while true {
            let batch = queue.withLock { queue -> [FinishedSpan] in
                let batch = Array(queue.prefix(maxBatch))
                queue.removeFirst(batch.count)
                return batch
            }
            guard !batch.isEmpty else { return }
            guard await send(batch) else { return }
        }
    }

    private func send(_ batch: [FinishedSpan]) async -> Bool {
        var scope = Opentelemetry_Proto_Trace_V1_ScopeSpans()
        scope.scope = Opentelemetry_Proto_Common_V1_InstrumentationScope()
        scope.scope?.name = "portal"
        scope.spans = batch.map(\.otlp)
        var spans = Opentelemetry_Proto_Trace_V1_ResourceSpans()
        spans.resource = resource
        spans.scopeSpans = [scope]
        var request = Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest()
        request.resourceSpans = [spans]
        do {
            let response = try await client.export(request, options: CallOptions(timeout: configuration.exportTimeout))
            let rejected = Int(response.partialSuccess?.rejectedSpans ?? 0)
            exported.increment(by: Int64(batch.count - rejected))
            if rejected > 0 { droppedExportFailed.increment(by: Int64(rejected)) }
            failures.withLock { $0 = 0 }
            return true
        } catch {
            droppedExportFailed.increment(by: Int64(batch.count))
            let failed = failures.withLock { failures -> Int in
                failures += 1
                return failures
            }
            if failed == 1 || failed % 60 == 0 {
                logger.warning(
                    "sending spans to the trace collector failed; dropped them",
                    metadata: ["spans": "\(batch.count)", "error": "\(error)", "failures_in_a_row": "\(failed)"])
            }
            return false
        }
    }
}
