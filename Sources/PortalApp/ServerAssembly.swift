import Logging
import PortalAPI
import PortalHTTP2
import PortalRPC
import PortalStandardServices

/// Builds a server with the standard services (health, reflection) and observers around `services`.
public enum ServerAssembly {
    /// A server hosting `services`, health and reflection, with access logs and call metrics;
    /// every call runs through `interceptors` (transport and caller policies), outermost first, inside
    /// a span of `tracer` when tracing is on.
    ///
    /// Every call already has a request id (the client's `x-request-id`, or a fresh one) that the
    /// transport returns in the response headers and the access log records.
    public static func makeServer(
        services: [any RPCService], configuration: RPCServer.Configuration, logger: Logger,
        interceptors: [any ServerInterceptor] = [], tracer: (any ServerCallTracer)? = nil
    ) -> (server: RPCServer, health: HealthService) {
        let hosted = services.map(\.serviceName)
        let standardNames = [
            Grpc_Health_V1_HealthMethods.serviceName, Grpc_Reflection_V1_ServerReflectionMethods.serviceName,
            Grpc_Reflection_V1alpha_ServerReflectionMethods.serviceName,
        ]
        let health = HealthService(services: hosted)
        let allServices: [any RPCService] =
            services + [
                health,
                ReflectionService(hostedServices: hosted + standardNames),
                ReflectionServiceV1Alpha(hostedServices: hosted + standardNames),
            ]
        let server = RPCServer(
            configuration: configuration, services: allServices, interceptors: interceptors,
            observers: standardObservers(logger: logger), tracer: tracer, logger: logger,
            eventLoopGroup: EventLoops.shared, onShutdown: { health.markAllNotServing() })
        return (server, health)
    }

    /// The observers of every call, on every transport: access logs and call metrics.
    public static func standardObservers(logger: Logger) -> [any ServerCallObserver] {
        [AccessLogObserver(logger: logger), CallMetricsObserver()]
    }
}
