import Instrumentation
import PortalRPC

/// Reads trace headers (`traceparent`, `tracestate`) from a call's metadata.
public struct MetadataExtractor: Extractor {
    /// Creates the extractor.
    public init() {}

    /// The first value of `key`.
    public func extract(key: String, from carrier: Metadata) -> String? {
        carrier.firstString(forKey: key)
    }
}

/// Writes trace headers into a call's metadata, replacing any value already there.
public struct MetadataInjector: Injector {
    /// Creates the injector.
    public init() {}

    /// Sets `key` to `value`.
    public func inject(_ value: String, forKey key: String, into carrier: inout Metadata) {
        carrier.removeAll(forKey: key)
        carrier.addString(value, forKey: key)
    }
}
