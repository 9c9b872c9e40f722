import PortalAPI
import Tracing
import W3CTraceContext

typealias OTLPSpan = Opentelemetry_Proto_Trace_V1_Span
typealias OTLPKeyValue = Opentelemetry_Proto_Common_V1_KeyValue
typealias OTLPResource = Opentelemetry_Proto_Resource_V1_Resource

extension FinishedSpan {
    /// The span as OTLP sends it.
    var otlp: OTLPSpan {
        var span = OTLPSpan()
        span.traceID = traceContext.traceID.byteArray
        span.spanID = traceContext.spanID.byteArray
        span.parentSpanID = parentSpanID?.byteArray ?? []
        span.traceState = traceContext.traceStateHeaderValue ?? ""
        span.flags = UInt32(traceContext.flags.rawValue)
        span.name = name
        span.kind = kind.otlp
        span.startTimeUnixNano = startNanoseconds
        span.endTimeUnixNano = endNanoseconds
        span.attributes = attributes.otlp
        span.events = events.map { event in
            var otlp = OTLPSpan.Event()
            otlp.name = event.name
            otlp.timeUnixNano = event.nanosecondsSinceEpoch
            otlp.attributes = event.attributes.otlp
            return otlp
        }
        span.links = links.compactMap { link in
            guard let linked = link.context.traceContext else { return nil }
            var otlp = OTLPSpan.Link()
            otlp.traceID = linked.traceID.byteArray
            otlp.spanID = linked.spanID.byteArray
            otlp.traceState = linked.traceStateHeaderValue ?? ""
            otlp.flags = UInt32(linked.flags.rawValue)
            otlp.attributes = link.attributes.otlp
            return otlp
        }
        if let status {
            var otlp = Opentelemetry_Proto_Trace_V1_Status()
            otlp.code = status.code == .ok ? .ok : .error
            otlp.message = status.message ?? ""
            span.status = otlp
        }
        return span
    }
}

extension SpanKind {
    var otlp: OTLPSpan.SpanKind {
        switch self {
        case .server: .server
        case .client: .client
        case .producer: .producer
        case .consumer: .consumer
        case .internal: .internal
        }
    }
}

extension SpanAttributes {
    /// The attributes as OTLP key-values, in key order; lists become their elements joined by ", ".
    var otlp: [OTLPKeyValue] {
        var pairs: [OTLPKeyValue] = []
        forEach { key, attribute in pairs.append(.init(key, attribute.otlp)) }
        return pairs.sorted { $0.key < $1.key }
    }
}

extension SpanAttribute {
    var otlp: Opentelemetry_Proto_Common_V1_AnyValue.Value {
        switch self {
        case .int32(let value): return .intValue(Int64(value))
        case .int64(let value): return .intValue(value)
        case .double(let value): return .doubleValue(value)
        case .bool(let value): return .boolValue(value)
        case .string(let value): return .stringValue(value)
        case .stringConvertible(let value): return .stringValue(value.description)
        case .int32Array(let values): return Self.list(values)
        case .int64Array(let values): return Self.list(values)
        case .doubleArray(let values): return Self.list(values)
        case .boolArray(let values): return Self.list(values)
        case .stringArray(let values): return Self.list(values)
        case .stringConvertibleArray(let values): return .stringValue(values.map(\.description).joined(separator: ", "))
        default: return .stringValue(String(describing: self))
        }
    }

    private static func list(_ values: [some CustomStringConvertible]) -> Opentelemetry_Proto_Common_V1_AnyValue.Value {
        .stringValue(values.map(\.description).joined(separator: ", "))
    }
}

extension OTLPKeyValue {
    init(_ key: String, _ value: Opentelemetry_Proto_Common_V1_AnyValue.Value) {
        self.init()
        self.key = key
        var anyValue = Opentelemetry_Proto_Common_V1_AnyValue()
        anyValue.value = value
        self.value = anyValue
    }

    init(_ key: String, _ value: String) {
        self.init(key, .stringValue(value))
    }
}
