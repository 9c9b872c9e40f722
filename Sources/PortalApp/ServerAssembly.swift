import PortalAPI
import Logging
import PortalHTTP2
import PortalRPC
import PortalStandardServices

/// Builds a server with the standard services (health, reflection) and interceptors around `services`.
public enum ServerAssembly {
    /// A server hosting `services`, health and reflection, with access logs and call metrics.
    ///
    /// Every call already has a request id (the client's `x-request-id`, or a fresh one) that the
    /// transport returns in the response headers and the access log records.
    public static func makeServer(
        services: [any RPCService], configuration: RPCServer.Configuration, logger: Logger,
        extraInterceptors: [any ServerInterceptor] = []
    ) -> (server: RPCServer, health: HealthService) {
        let hosted = services.map(\.serviceName)
        let standardNames = [
            Grpc_Health_V1_HealthMethods.serviceName, Grpc_Reflection_V1_ServerReflectionMethods.serviceName,
            Grpc_Reflection_V1alpha_ServerReflectionMethods.serviceName,
        ]
        let health = HealthService(services: hosted)
        let allServices: [any RPCService] = services + [
            health,
            ReflectionService(hostedServices: hosted + standardNames),
            ReflectionServiceV1Alpha(hostedServices: hosted + standardNames),
        ]
        let interceptors = standardInterceptors(logger: logger) + extraInterceptors
        let server = RPCServer(
            configuration: configuration, services: allServices, interceptors: interceptors, logger: logger,
            eventLoopGroup: EventLoops.shared, onShutdown: { health.markAllNotServing() })
        return (server, health)
    }

    /// The interceptors every call runs through, on every transport: access logs and call metrics.
    public static func standardInterceptors(logger: Logger) -> [any ServerInterceptor] {
        [AccessLogInterceptor(logger: logger), MetricsInterceptor()]
    }
}
