import Foundation

/// Where a process sends its traces and how many it keeps: flags first, then the environment
/// (`PORTAL_OTLP_ENDPOINT`, `PORTAL_TRACE_SAMPLING_RATIO`, and OpenTelemetry's usual `OTEL_*`
/// variables where they apply).
public struct TracingSettings: Sendable {
    /// The collector (OTLP over gRPC).
    public var endpoint: OTLPEndpoint
    /// The share of new traces recorded, 0…1 (a call that arrives with a trace follows its decision).
    public var samplingRatio: Double
    /// What the process is called in traces (`service.name`) and the rest of its resource attributes.
    public var resource: [(String, String)]
    /// A PEM CA verifying an `https` collector (`OTEL_EXPORTER_OTLP_CERTIFICATE`); the system's CAs by default.
    public var caFile: String?

    /// The settings for a process called `serviceName` (`portal-gateway`), or nil when tracing is
    /// off: no endpoint given, or `OTEL_SDK_DISABLED=true`.
    ///
    /// - endpoint: `--otlp-endpoint`, else `PORTAL_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
    ///   `OTEL_EXPORTER_OTLP_ENDPOINT`: `host:port`, `http://host:port` or `https://host:port`
    ///   (port 4317 when left out).
    /// - sampling: `--trace-sampling-ratio`, else `PORTAL_TRACE_SAMPLING_RATIO`, else
    ///   `OTEL_TRACES_SAMPLER` (`always_on`, `always_off`, `traceidratio` or their `parentbased_`
    ///   forms, which is what the portal does) with `OTEL_TRACES_SAMPLER_ARG`; 1 by default.
    /// - resource: `OTEL_SERVICE_NAME` replaces `serviceName`; `OTEL_RESOURCE_ATTRIBUTES`
    ///   (`key=value,…`) adds attributes.
    public static func resolve(
        endpoint: String?, samplingRatio: Double?, serviceName: String,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> TracingSettings? {
        if environment["OTEL_SDK_DISABLED"]?.lowercased() == "true" { return nil }
        let endpointFlag = endpoint.map { ("--otlp-endpoint", $0) }
        let named = ["PORTAL_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]
        guard
            let (source, address) = endpointFlag
                ?? named.lazy.compactMap({ name in environment[name].map { (name, $0) } }).first(where: {
                    !$0.1.isEmpty
                })
        else { return nil }
        let parsed = try OTLPEndpoint(parsing: address, source: source)
        let ratio =
            try samplingRatio.map { try checkedRatio($0, source: "--trace-sampling-ratio") }
            ?? environmentRatio(environment)
        var resource: [(String, String)] = [
            ("service.name", environment["OTEL_SERVICE_NAME"].flatMap { $0.isEmpty ? nil : $0 } ?? serviceName),
            ("service.namespace", "end-customer-portal"),
            ("service.instance.id", UUID().uuidString.lowercased()),
            ("host.name", ProcessInfo.processInfo.hostName),
            ("telemetry.sdk.name", "portal"), ("telemetry.sdk.language", "swift"),
        ]
        for pair in (environment["OTEL_RESOURCE_ATTRIBUTES"] ?? "").split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1).map {
                ($0.trimmingCharacters(in: .whitespaces).removingPercentEncoding ?? String($0))
            }
            guard parts.count == 2, !parts[0].isEmpty,
                parts[0] != "service.name" || environment["OTEL_SERVICE_NAME"] == nil
            else { continue }
            resource.removeAll { $0.0 == parts[0] }
            resource.append((parts[0], parts[1]))
        }
        return TracingSettings(
            endpoint: parsed, samplingRatio: ratio, resource: resource,
            caFile: environment["OTEL_EXPORTER_OTLP_CERTIFICATE"])
    }

    private static func environmentRatio(_ environment: [String: String]) throws -> Double {
        if let ratio = environment["PORTAL_TRACE_SAMPLING_RATIO"] {
            return try checkedRatio(Double(ratio) ?? .nan, source: "PORTAL_TRACE_SAMPLING_RATIO")
        }
        switch environment["OTEL_TRACES_SAMPLER"]?.lowercased() {
        case nil, "always_on", "parentbased_always_on": return 1
        case "always_off", "parentbased_always_off": return 0
        case "traceidratio", "parentbased_traceidratio":
            return try checkedRatio(
                Double(environment["OTEL_TRACES_SAMPLER_ARG"] ?? "1") ?? .nan, source: "OTEL_TRACES_SAMPLER_ARG")
        case let sampler?:
            throw TracingSettingsError(
                "OTEL_TRACES_SAMPLER: \(sampler) is not one the portal knows (always_on, always_off, traceidratio)")
        }
    }

    private static func checkedRatio(_ ratio: Double, source: String) throws -> Double {
        guard (0...1).contains(ratio) else {
            throw TracingSettingsError("\(source): the sampling ratio must be a number from 0 to 1")
        }
        return ratio
    }
}

/// An OTLP/gRPC collector's address.
public struct OTLPEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// The host name or address.
    public var host: String
    /// The port (4317, OTLP/gRPC's, by default).
    public var port: Int
    /// Whether calls use TLS (`https://`).
    public var secure: Bool

    /// Parses `host:port`, `http://host[:port]` or `https://host[:port]`; `source` names where it came
    /// from in the error.
    public init(parsing text: String, source: String) throws {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        secure = false
        if rest.hasPrefix("https://") {
            secure = true
            rest = rest.dropFirst("https://".count)
        } else if rest.hasPrefix("http://") {
            rest = rest.dropFirst("http://".count)
        }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        let invalid = TracingSettingsError(
            "\(source): expected host:port, http://host:port or https://host:port, not \(text)")
        guard !rest.isEmpty, !rest.contains("/") else { throw invalid }
        if let colon = rest.lastIndex(of: ":"), !rest.hasSuffix("]") {
            guard let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else { throw invalid }
            self.port = port
            rest = rest[..<colon]
        } else {
            port = 4317
        }
        host = rest.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        guard !host.isEmpty else { throw invalid }
    }

    /// `http://host:port` or `https://host:port`.
    public var description: String {
        "\(secure ? "https" : "http")://\(host.contains(":") ? "[\(host)]" : host):\(port)"
    }
}

/// Tracing settings that cannot work, naming the flag or variable.
public struct TracingSettingsError: Error, CustomStringConvertible {
    /// What is wrong.
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
