import Metrics
import PortalRPC
import Synchronization

/// Records every call a server handles: calls by service, method and status code
/// (`portal_rpc_calls_total`), their duration (`portal_rpc_call_duration_seconds`, a histogram) and
/// the calls in flight (`portal_rpc_calls_in_flight`).
final class MetricsInterceptor: ServerInterceptor {
    /// The metrics of one method, made once.
    private final class MethodMetrics: Sendable {
        let duration: Metrics.Timer
        let inFlight: Meter
        private let service: String
        private let method: String
        private let calls = Locked<[RPCStatusCode: Counter]>([:])

        init(service: String, method: String) {
            self.service = service
            self.method = method
            duration = Metrics.Timer(label: "portal_rpc_call_duration_seconds", dimensions: [("service", service), ("method", method)])
            inFlight = Meter(label: "portal_rpc_calls_in_flight", dimensions: [("service", service), ("method", method)])
        }

        func calls(_ code: RPCStatusCode) -> Counter {
            calls.withLock { calls in
                if let counter = calls[code] { return counter }
                let counter = Counter(label: "portal_rpc_calls_total", dimensions: [("service", service), ("method", method), ("code", code.description)])
                calls[code] = counter
                return counter
            }
        }
    }

    private let methods = Locked<[String: MethodMetrics]>([:])

    func intercept(context: ServerContext, next: @Sendable (ServerContext) async throws -> Void) async throws {
        let metrics = methods.withLock { methods in
            if let existing = methods[context.method.path] { return existing }
            let made = MethodMetrics(service: context.method.service, method: context.method.method)
            methods[context.method.path] = made
            return made
        }
        let started = ContinuousClock.now
        metrics.inFlight.increment()
        defer {
            metrics.inFlight.decrement()
            metrics.duration.recordNanoseconds(Int64((ContinuousClock.now - started) / .nanoseconds(1)))
        }
        do {
            try await next(context)
            metrics.calls(.ok).increment()
        } catch let error as RPCError {
            metrics.calls(error.code).increment()
            throw error
        } catch {
            metrics.calls(.unknown).increment()
            throw error
        }
    }
}
