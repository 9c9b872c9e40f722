import PortalHTTP2
import PortalRPC
import PortalStorage
import PortalWeb
import ServiceLifecycle

/// The domain half of one portal service: its RPC services, its database and the workers beside it,
/// before the server, relays and ports are put around it (`PortalRuntime.assemble`).
public struct ServiceComponent: Sendable {
    /// The RPC services to host.
    public var services: [any RPCService]
    /// The service's database (nil for the gateway).
    public var database: ServiceDatabase?
    /// Workers to run beside the server (the invite mail relay, the expiry sweeper).
    public var workers: [any Service]
    /// Streams that never end by themselves (event subscriptions), ended when shutdown begins.
    public var liveStreams: LiveStreams?

    /// A component.
    public init(
        services: [any RPCService], database: ServiceDatabase? = nil, workers: [any Service] = [],
        liveStreams: LiveStreams? = nil
    ) {
        self.services = services
        self.database = database
        self.workers = workers
        self.liveStreams = liveStreams
    }
}

/// One portal service assembled as `portal` runs it.
public struct AssembledService: Sendable {
    /// Every lifecycle service, in the order a service group runs them (and shuts them down in reverse).
    public let services: [any Service]
    /// The RPC server, its port bound.
    public let server: RPCServer
    /// The gateway's web listener, when it has one.
    public let web: WebServer?
    /// The service's database (nil for the gateway).
    public let database: ServiceDatabase?
}

/// Ends a server's live streams when graceful shutdown begins. Run as a worker, which a service group
/// shuts down before the servers, so the servers' own shutdown finds no stream holding it open.
struct LiveStreamsCloser: Service {
    let streams: LiveStreams

    func run() async throws {
        try? await gracefulShutdown()
        streams.close()
    }
}
