import Logging
import PortalAPI
import PortalApp
import PortalHTTP2
import PortalRPC
import PortalTestServices
import ServiceLifecycle
import Synchronization
import Testing
import Tracing
import W3CTraceContext

@testable import PortalTracing

/// Ended spans, kept in order: what a tracer hands its sink, for the tests of the tracer alone.
final class KeptSpans: SpanSink {
    private let spans = Mutex<[FinishedSpan]>([])
    func record(_ span: FinishedSpan) { spans.withLock { $0.append(span) } }
    var all: [FinishedSpan] { spans.withLock { $0 } }
}

@Suite("Trace context: W3C headers in and out, sampling")
struct TraceContextTests {
    static let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let parentID = "00f067aa0ba902b7"

    @Test func aCallersTraceparentIsContinuedAndPassedOn() throws {
        let kept = KeptSpans()
        let tracer = PortalTracer(samplingRatio: 0, sink: kept)  // the caller's decision wins over the ratio
        var caller = ServiceContext.topLevel
        let headers: Metadata = ["traceparent": "00-\(Self.traceID)-\(Self.parentID)-01", "tracestate": "vendor=value"]
        tracer.extract(headers, into: &caller, using: MetadataExtractor())
        let span = tracer.startSpan("op", context: caller, ofKind: .server)
        #expect(span.isRecording)
        var outgoing: Metadata = ["traceparent": "stale"]
        tracer.inject(span.context, into: &outgoing, using: MetadataInjector())
        let own = try #require(span.context.traceContext)
        #expect(outgoing["traceparent"] == ["00-\(Self.traceID)-\(own.spanID)-01"])
        #expect(outgoing["tracestate"] == ["vendor=value"])
        span.end()
        let ended = try #require(kept.all.first)
        #expect(ended.traceContext.traceID.description == Self.traceID)
        #expect(ended.parentSpanID?.description == Self.parentID)
        #expect(ended.otlp.parentSpanID == ended.parentSpanID?.byteArray)
    }

    @Test(arguments: [
        "garbage", "00-\(String(repeating: "0", count: 32))-\(parentID)-01", "00-\(traceID)-0000000000000000-01",
        "ff-\(traceID)-\(parentID)-01", "00-\(traceID.uppercased())-\(parentID)-01",
    ])
    func anInvalidTraceparentStartsANewTrace(header: String) throws {
        let tracer = PortalTracer(samplingRatio: 1, sink: KeptSpans())
        var caller = ServiceContext.topLevel
        tracer.extract(["traceparent": header] as Metadata, into: &caller, using: MetadataExtractor())
        let span = tracer.startSpan("op", context: caller, ofKind: .server)
        #expect(try #require(span.context.traceContext).traceID.description != Self.traceID)
    }

    @Test func anUnsampledCallerIsFollowedButStillPassedOn() throws {
        let kept = KeptSpans()
        let tracer = PortalTracer(samplingRatio: 1, sink: kept)
        var caller = ServiceContext.topLevel
        tracer.extract(
            ["traceparent": "00-\(Self.traceID)-\(Self.parentID)-00"] as Metadata, into: &caller,
            using: MetadataExtractor())
        let span = tracer.startSpan("op", context: caller, ofKind: .server)
        #expect(!span.isRecording)
        var outgoing = Metadata()
        tracer.inject(span.context, into: &outgoing, using: MetadataInjector())
        #expect(outgoing.firstString(forKey: "traceparent")?.hasPrefix("00-\(Self.traceID)-") == true)
        #expect(outgoing.firstString(forKey: "traceparent")?.hasSuffix("-00") == true)
        span.end()
        #expect(kept.all.isEmpty)
    }

    @Test func idsAreUniqueAndTheirBitsEven() {
        let ids = IDGenerator()
        let traces = (0..<20_000).map { _ in ids.traceID() }
        #expect(Set(traces).count == traces.count)
        #expect(Set((0..<20_000).map { _ in ids.spanID() }).count == 20_000)
        // Each bit of the part sampling reads is set about half the time.
        for bit in 0..<64 {
            let set = traces.filter { $0.randomPart >> UInt64(bit) & 1 == 1 }.count
            #expect((9_400...10_600).contains(set), "bit \(bit) set in \(set) of 20,000 trace ids")
        }
    }

    @Test func theRatioDecidesNewTracesByTraceID() {
        let ids = (0..<4000).map { _ in TraceID.random() }
        #expect(ids.allSatisfy(TraceIDRatioSampler(ratio: 1).samples))
        #expect(!ids.contains(where: TraceIDRatioSampler(ratio: 0).samples))
        let tenth = ids.filter(TraceIDRatioSampler(ratio: 0.1).samples).count
        #expect((250...550).contains(tenth), "\(tenth) of 4000 traces sampled at 10%")
        // Every service decides alike for the same trace.
        #expect(ids.map(TraceIDRatioSampler(ratio: 0.1).samples) == ids.map(TraceIDRatioSampler(ratio: 0.1).samples))
    }
}

@Suite("Tracing settings from flags and the environment")
struct TracingSettingsTests {
    @Test func noEndpointMeansNoTracing() throws {
        #expect(
            try TracingSettings.resolve(
                endpoint: nil, samplingRatio: nil, serviceName: "portal-audit", environment: [:]) == nil)
        #expect(
            try TracingSettings.resolve(
                endpoint: "collector:4317", samplingRatio: nil, serviceName: "portal-audit",
                environment: ["OTEL_SDK_DISABLED": "true"]) == nil)
    }

    @Test func theFlagComesFirstThenPortalsThenOpenTelemetrysVariables() throws {
        let environment = [
            "PORTAL_OTLP_ENDPOINT": "portal-collector:4317", "OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.example:4318",
            "OTEL_SERVICE_NAME": "audit-eu",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,service.name=ignored",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25",
        ]
        let flagged = try #require(
            try TracingSettings.resolve(
                endpoint: "http://[::1]:55680/", samplingRatio: 0.5, serviceName: "portal-audit",
                environment: environment))
        #expect(flagged.endpoint == (try OTLPEndpoint(parsing: "[::1]:55680", source: "test")))
        #expect(flagged.endpoint.host == "::1" && !flagged.endpoint.secure && flagged.samplingRatio == 0.5)
        let resource = Dictionary(flagged.resource, uniquingKeysWith: { $1 })
        #expect(resource["service.name"] == "audit-eu" && resource["deployment.environment"] == "prod")
        var unflagged = environment
        unflagged["PORTAL_OTLP_ENDPOINT"] = nil
        let fromOpenTelemetry = try #require(
            try TracingSettings.resolve(
                endpoint: nil, samplingRatio: nil, serviceName: "portal-audit", environment: unflagged))
        #expect(fromOpenTelemetry.endpoint.description == "https://otel.example:4318")
        #expect(fromOpenTelemetry.samplingRatio == 0.25)
        let portal = try #require(
            try TracingSettings.resolve(
                endpoint: nil, samplingRatio: nil, serviceName: "portal-audit", environment: environment))
        #expect(portal.endpoint.description == "http://portal-collector:4317")
    }

    @Test(arguments: [
        (["PORTAL_TRACE_SAMPLING_RATIO": "2"], "PORTAL_TRACE_SAMPLING_RATIO"),
        (["OTEL_TRACES_SAMPLER": "jaeger_remote"], "OTEL_TRACES_SAMPLER"),
        (["OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"], "OTEL_TRACES_SAMPLER_ARG"),
    ])
    func aSettingThatCannotWorkIsRefusedByName(environment: [String: String], named: String) {
        #expect {
            try TracingSettings.resolve(
                endpoint: "c:4317", samplingRatio: nil, serviceName: "s", environment: environment)
        } throws: { "\($0)".contains(named) }
    }

    @Test(arguments: ["", "http://", "collector:0", "collector:port", "http://collector:4317/v1/traces"])
    func anEndpointThatIsNotAnAddressIsRefused(text: String) {
        #expect(throws: TracingSettingsError.self) { try OTLPEndpoint(parsing: text, source: "--otlp-endpoint") }
    }

    @Test func thePortDefaultsToOTLPsOwn() throws {
        #expect(try OTLPEndpoint(parsing: "https://collector", source: "x").description == "https://collector:4317")
    }
}

/// A collector: keeps what is exported to it.
final class Collector: Opentelemetry_Proto_Collector_Trace_V1_TraceService {
    private let spans = Mutex<[(service: String, span: Opentelemetry_Proto_Trace_V1_Span)]>([])

    func export(
        request: Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest, context: ServerContext
    ) async throws -> Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse {
        for resourceSpans in request.resourceSpans {
            let service = resourceSpans.resource?.attributes.first { $0.key == "service.name" }
            guard case .stringValue(let name)? = service?.value?.value else { continue }
            for scope in resourceSpans.scopeSpans {
                spans.withLock { kept in kept += scope.spans.map { (name, $0) } }
            }
        }
        return .init()
    }

    var all: [(service: String, span: Opentelemetry_Proto_Trace_V1_Span)] { spans.withLock { $0 } }
}

@Suite("Spans of real calls, exported to a real collector over OTLP")
struct ExportTests {
    @Test func aTracedCallIsAClientSpanWithTheServersSpanUnderIt() async throws {
        let collector = Collector()
        try await withServer([collector], tracer: nil) { collectorPort in
            let exporterChannel = RPCClientChannel(host: "127.0.0.1", port: collectorPort)
            var configuration = OTLPExporter.Configuration()
            configuration.scheduleDelay = .milliseconds(50)
            let exporter = OTLPExporter(
                channel: exporterChannel, closeChannel: { await exporterChannel.close() },
                resource: [("service.name", "echo-test")], configuration: configuration, logger: Self.quiet)
            let tracer = PortalTracer(samplingRatio: 1, sink: exporter)
            let exporting = Task { try await exporter.run() }
            try await withServer([EchoService()], tracer: ServerSpans(tracer: tracer)) { echoPort in
                let raw = RPCClientChannel(host: "127.0.0.1", port: echoPort)
                let client = Portal_Testing_V1_EchoClient(
                    channel: TracedChannel(raw, tracer: tracer, peer: "127.0.0.1:\(echoPort)"))
                var request = Portal_Testing_V1_EchoRequest()
                request.message = "traced"
                let answer = try await client.get(request)
                #expect(answer.message == "traced")
                request.failWithCode = Int32(RPCStatusCode.internal.rawValue)
                await #expect(throws: RPCError.self) { try await client.get(request) }
                await raw.close()
            }
            var spans = collector.all
            for _ in 0..<200 where spans.count < 4 {
                try await Task.sleep(for: .milliseconds(25))
                spans = collector.all
            }
            exporting.cancel()
            _ = try? await exporting.value
            try #require(spans.count == 4, "\(spans.map(\.span.name))")
            #expect(Set(spans.map(\.service)) == ["echo-test"])
            let clients = spans.map(\.span).filter { $0.kind == .client }
            let servers = spans.map(\.span).filter { $0.kind == .server }
            #expect(clients.count == 2 && servers.count == 2)
            for server in servers {
                let client = try #require(clients.first { $0.spanID == server.parentSpanID })
                #expect(client.traceID == server.traceID && client.parentSpanID.isEmpty)
                #expect(server.name == "portal.testing.v1.Echo/Get")
                #expect(server.startTimeUnixNano >= client.startTimeUnixNano)
                #expect(server.endTimeUnixNano <= client.endTimeUnixNano)
                #expect(server.flags & 0xFF == 1)
            }
            let failed = try #require(servers.first { $0.status?.code == .error })
            #expect(failed.attributes.contains { $0.key == "rpc.grpc.status_code" && $0.value?.value == .intValue(13) })
            #expect(clients.filter { $0.status?.code == .error }.count == 1)
        }
    }

    @Test func aFullQueueDropsSpansInsteadOfWaiting() async throws {
        let dead = RPCClientChannel(host: "127.0.0.1", port: 1)
        var configuration = OTLPExporter.Configuration()
        configuration.maxQueueSize = 10
        let exporter = OTLPExporter(
            channel: dead, closeChannel: { await dead.close() }, resource: [("service.name", "nowhere")],
            configuration: configuration, logger: Self.quiet)
        let tracer = PortalTracer(samplingRatio: 1, sink: exporter)
        for index in 0..<1000 { tracer.startSpan("span \(index)", context: .topLevel, ofKind: .internal).end() }
        #expect(exporter.queuedCount == 10)
        await dead.close()
    }

    static var quiet: Logger {
        var logger = Logger(label: "tracing-test")
        logger.logLevel = .critical
        return logger
    }

    /// Runs `body` with `services` served on a loopback port (each call inside `tracer`'s spans).
    func withServer(
        _ services: [any RPCService], tracer: (any ServerCallTracer)?, _ body: @Sendable (Int) async throws -> Void
    ) async throws {
        let (server, _) = ServerAssembly.makeServer(
            services: services, configuration: .init(host: "127.0.0.1", port: 0), logger: Self.quiet, tracer: tracer)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            do {
                try await body(try await server.boundAddress().port!)
            } catch {
                server.beginGracefulShutdown()
                throw error
            }
            server.beginGracefulShutdown()
            try await group.waitForAll()
        }
    }
}
