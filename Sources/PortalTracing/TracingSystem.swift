import Instrumentation
import Logging
import PortalHTTP2
import PortalRPC
import ServiceContextModule
import Tracing

/// Tracing as a process runs it: the portal's tracer, bootstrapped as the process's tracer (so
/// storage's database spans and any library's spans use it), and the exporter that sends its spans.
public final class TracingSystem: Sendable {
    /// The tracer.
    public let tracer: PortalTracer
    /// The exporter, a lifecycle service to run before (and so stop after) the services it traces.
    public let exporter: OTLPExporter

    private init(tracer: PortalTracer, exporter: OTLPExporter) {
        self.tracer = tracer
        self.exporter = exporter
    }

    /// Starts tracing for this process as `settings` say; call once, before the services start.
    public static func bootstrap(_ settings: TracingSettings, logger: Logger) throws -> TracingSystem {
        var configuration = RPCClientChannel.Configuration()
        configuration.connectTimeout = .seconds(5)
        configuration.maxBackoff = .seconds(30)
        if settings.endpoint.secure {
            var tls = TLSClientSettings(caFile: settings.caFile ?? "/etc/ssl/certs/ca-certificates.crt")
            tls.minimumVersion = .v1_2
            configuration.tls = try TLSContextSource.client(tls, logger: logger)
        }
        let channel = RPCClientChannel(
            host: settings.endpoint.host, port: settings.endpoint.port, configuration: configuration)
        let exporter = OTLPExporter(
            channel: channel, closeChannel: { await channel.close() }, resource: settings.resource, logger: logger)
        let tracer = PortalTracer(samplingRatio: settings.samplingRatio, sink: exporter)
        InstrumentationSystem.bootstrap(tracer)
        logger.info(
            "tracing to an OTLP collector",
            metadata: ["endpoint": "\(settings.endpoint)", "sampling_ratio": "\(settings.samplingRatio)"])
        return TracingSystem(tracer: tracer, exporter: exporter)
    }

    /// What servers run each call in: a server span.
    public var serverCallTracer: any ServerCallTracer { ServerSpans(tracer: tracer) }

    /// `channel` with a client span per call; `peer` is where it leads (`host:port`).
    public func traced(_ channel: any RPCChannel, peer: String) -> any RPCChannel {
        TracedChannel(channel, tracer: tracer, peer: peer)
    }
}

extension Logger.MetadataProvider {
    /// `trace_id` and `span_id` of the span the logging code runs in, on every line logged inside a trace.
    public static let traceIDs = Logger.MetadataProvider {
        guard let trace = ServiceContext.current?.traceContext else { return [:] }
        return ["trace_id": .string(trace.traceID.description), "span_id": .string(trace.spanID.description)]
    }
}
