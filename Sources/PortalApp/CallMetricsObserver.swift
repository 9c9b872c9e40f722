import Metrics
import PortalRPC
import Synchronization

/// Records every call a server handles: calls by service, method and status code
/// (`portal_rpc_calls_total`), their duration (`portal_rpc_call_duration_seconds`, a histogram) and
/// the calls in flight (`portal_rpc_calls_in_flight`).
final class CallMetricsObserver: ServerCallObserver {
    /// The metrics of one method, made once.
    private final class MethodMetrics: Sendable {
        let duration: Metrics.Timer
        let inFlight: Meter
        private let service: String
        private let method: String
        /// Calls that ended `OK`, the usual outcome, counted without a lookup.
        private let okCalls: Counter
        private let calls = Locked<[RPCStatusCode: Counter]>([:])

        init(service: String, method: String) {
            self.service = service
            self.method = method
            duration = Metrics.Timer(
                label: "portal_rpc_call_duration_seconds", dimensions: [("service", service), ("method", method)])
            inFlight = Meter(
                label: "portal_rpc_calls_in_flight", dimensions: [("service", service), ("method", method)])
            okCalls = Counter(
                label: "portal_rpc_calls_total",
                dimensions: [("service", service), ("method", method), ("code", RPCStatusCode.ok.description)])
        }

        func calls(_ code: RPCStatusCode) -> Counter {
            if code == .ok { return okCalls }
            return calls.withLock { calls in
                if let counter = calls[code] { return counter }
                let counter = Counter(
                    label: "portal_rpc_calls_total",
                    dimensions: [("service", service), ("method", method), ("code", code.description)])
                calls[code] = counter
                return counter
            }
        }
    }

    /// Each method's metrics by descriptor (the usual lookup: generated code makes one static
    /// descriptor per method, so this holds one entry per method) and by path (for another
    /// descriptor of a method already seen). The descriptors are kept, so an identifier is never
    /// reused while it is a key.
    private struct Methods {
        var byDescriptor: [ObjectIdentifier: (descriptor: MethodDescriptor, metrics: MethodMetrics)] = [:]
        var byPath: [String: MethodMetrics] = [:]
    }

    private let methods = Locked(Methods())

    func callStarted(_ context: ServerContext) {
        metrics(of: context.method).inFlight.increment()
    }

    func callEnded(_ context: ServerContext, error: RPCError?, duration: Duration) {
        let metrics = metrics(of: context.method)
        metrics.inFlight.decrement()
        metrics.duration.recordNanoseconds(Int64(duration / .nanoseconds(1)))
        metrics.calls(error?.code ?? .ok).increment()
    }

    private func metrics(of method: MethodDescriptor) -> MethodMetrics {
        methods.withLock { methods in
            if let known = methods.byDescriptor[ObjectIdentifier(method)] { return known.metrics }
            let metrics = methods.byPath[method.path] ?? MethodMetrics(service: method.service, method: method.method)
            methods.byPath[method.path] = metrics
            methods.byDescriptor[ObjectIdentifier(method)] = (method, metrics)
            return metrics
        }
    }
}
