import Foundation
import Logging
import Metrics
import PortalAPI
import PortalAudit
import PortalAuditOutbox
import PortalEntitlements
import PortalGateway
import PortalHTTP2
import PortalIdentity
import PortalProtoJSON
import PortalRPC
import PortalStorage
import PortalTime
import PortalTracing
import PortalWeb
import Prometheus
import ServiceLifecycle

/// Where one service listens and keeps its data.
public struct ServiceSettings: Sendable {
    /// Which service.
    public var kind: PortalServiceKind
    /// The address to bind.
    public var host: String
    /// The port to bind.
    public var port: Int
    /// The folder that holds the service's database.
    public var dataDirectory: String
    /// An SMTP server (`host:port`) for invite mail; nil spools mail under the data directory.
    public var smtpServer: String?
    /// Where the audit service listens (`host:port`, or several instances' separated by commas): the
    /// audit outbox relays and the gateway call it.
    public var auditAddress = "127.0.0.1:\(PortalServiceKind.audit.defaultPort)"
    /// The admin HTTP port (`/metrics`, `/healthz`, `/readyz`); nil serves none.
    public var adminPort: Int?
    /// How long an identity session lasts after login; nil keeps the service's default (12 hours).
    public var sessionLifetime: Duration?
    /// Where the identity service listens (`host:port`, or several instances' separated by commas), for the gateway.
    public var identityAddress = "127.0.0.1:\(PortalServiceKind.identity.defaultPort)"
    /// Where the entitlements service listens (`host:port`, or several instances' separated by commas), for
    /// the gateway.
    public var entitlementsAddress = "127.0.0.1:\(PortalServiceKind.entitlements.defaultPort)"
    /// TLS for the server and the calls it makes; nil serves and calls in cleartext.
    public var tls: ServiceTLS?
    /// A PostgreSQL database shared by every instance of the service; nil keeps an SQLite file in `dataDirectory`.
    public var database: PostgresLocation?
    /// A secret the gateway presents to the backends and they require before believing caller
    /// metadata from a peer that is neither on loopback nor vouched for by mutual TLS; nil trusts loopback only.
    public var internalCredential: String?
    /// The gateway's web listener port (Connect JSON, CSV downloads, the portal's pages); nil serves none.
    public var webPort: Int?
    /// A folder the web listener serves the portal's files from, read at each request, instead of
    /// the copy embedded in the binary (for working on the portal); nil serves the embedded copy.
    public var siteDirectory: String?
    /// The accept link in invite mail (identity), a URL in which `{secret}` stands for the invite's
    /// secret; nil keeps the identity service's placeholder link.
    public var inviteURL: String?
    /// The keys that sign page tokens; every instance of a service must share them (random per process by default).
    public var pageTokens = PageTokenKeys.random()
    /// How the audit service delivers webhooks.
    public var webhooks = AuditComponent.WebhookSettings()
    /// Days before an entitlement's expiry its Admins are mailed about unactivated licenses (entitlements).
    public var expiryNoticeDays = [30, 7, 1]
    /// The time the service records and waits on (the system's; tests move their own).
    public var clock: any ServiceClock = .system
    /// Tracing (server spans, client spans of the calls it makes), when the process traces.
    public var tracing: TracingSystem?
    /// A clock tests move through the admin port (`POST /testing/clock?advance_ms=N`); when set it
    /// is the service's clock too. Never set in production.
    public var testingClock: OffsetClock? {
        didSet { if let testingClock { clock = testingClock } }
    }

    /// Creates settings.
    public init(kind: PortalServiceKind, host: String, port: Int, dataDirectory: String) {
        self.kind = kind
        self.host = host
        self.port = port
        self.dataDirectory = dataDirectory
    }
}

/// Starts portal services and runs them until SIGTERM or SIGINT.
public enum PortalRuntime {
    /// Every metric of the process, exposed on the admin ports.
    public static let metrics = PrometheusCollectorRegistry()

    /// The metrics system for every executable: Prometheus, into `metrics`. Call once, at start.
    public static func bootstrapMetrics() {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics))
    }

    /// The logging system for every executable: JSON lines on standard error; with `traceIDs`, each
    /// line logged inside a trace carries its `trace_id` and `span_id`.
    public static func bootstrapLogging(level: Logger.Level, traceIDs: Bool = false) {
        LoggingSystem.bootstrap(
            { label, provider in
                var handler = JSONLogHandler(label: label, metadataProvider: provider)
                handler.logLevel = level
                return handler
            }, metadataProvider: traceIDs ? .traceIDs : nil)
    }

    /// A server for one service with its domain services, its databases and the workers that run
    /// beside it, its port already bound. Fails with a `StartupError` naming the service and the cause,
    /// after closing what it opened.
    public static func makeServices(_ settings: ServiceSettings, logger: Logger) async throws -> [any Service] {
        try await assemble(settings, logger: logger).services
    }

    /// `makeServices`, keeping hold of the server, web listener and database it assembled.
    public static func assemble(_ settings: ServiceSettings, logger: Logger) async throws -> AssembledService {
        let component: ServiceComponent
        do {
            component = try await makeComponent(settings, logger: logger)
        } catch {
            throw StartupError(service: settings.kind, cause: error)
        }
        return try await assemble(component, settings: settings, logger: logger)
    }

    /// Closes services that were made but will never run: databases, and servers' bound ports.
    public static func abandon(_ services: [any Service]) async {
        for service in services {
            if let database = service as? ServiceDatabase { await database.close() }
            if let server = service as? RPCServer { await server.closeListener() }
            if let server = service as? WebServer { await server.closeListener() }
        }
    }

    /// The domain half of the service `settings` names: its RPC service, database and workers.
    public static func makeComponent(_ settings: ServiceSettings, logger: Logger) async throws -> ServiceComponent {
        let logger = serviceLogger(logger, settings.kind)
        switch settings.kind {
        case .identity:
            var identitySettings = IdentityComponent.Settings(dataDirectory: settings.dataDirectory)
            identitySettings.smtpServer = settings.smtpServer
            identitySettings.database = settings.database
            identitySettings.pageTokens = settings.pageTokens
            identitySettings.clock = settings.clock
            if let lifetime = settings.sessionLifetime { identitySettings.sessionLifetime = lifetime }
            if let inviteURL = settings.inviteURL { identitySettings.acceptURL = inviteURL }
            let identity = try await IdentityComponent.start(settings: identitySettings, logger: logger)
            return ServiceComponent(
                services: [identity.service], database: identity.database, workers: identity.workers)
        case .audit:
            let audit = try await AuditComponent.start(
                dataDirectory: settings.dataDirectory, database: settings.database, pageTokens: settings.pageTokens,
                webhooks: settings.webhooks, clock: settings.clock, logger: logger)
            return ServiceComponent(
                services: [audit.service], database: audit.database, workers: audit.workers,
                liveStreams: audit.liveStreams)
        case .entitlements:
            let entitlements = try await EntitlementsComponent.start(
                dataDirectory: settings.dataDirectory, database: settings.database, pageTokens: settings.pageTokens,
                expiryNoticeDays: settings.expiryNoticeDays, clock: settings.clock, logger: logger)
            return ServiceComponent(
                services: [entitlements.service], database: entitlements.database, workers: entitlements.workers)
        case .gateway:
            let clientTLS = try settings.tls?.clientSource(logger: logger)
            let backend = { (address: String, flag: String) throws -> any RPCChannel in
                let channel = try channels(to: address, flag: flag, tls: clientTLS, tracing: settings.tracing)
                return settings.internalCredential.map { CredentialedChannel(channel: channel, credential: $0) }
                    ?? channel
            }
            let gateway = PortalGatewayService(
                backends: GatewayBackends(
                    identity: try backend(settings.identityAddress, "identity address"),
                    entitlements: try backend(settings.entitlementsAddress, "entitlements address"),
                    audit: try backend(settings.auditAddress, "audit address")),
                clock: settings.clock)
            return ServiceComponent(services: [gateway], liveStreams: gateway.liveStreams)
        }
    }

    /// Wraps `component` as `portal` runs it: the audit relay of a service that records audit events,
    /// the RPC server with its transport and caller policies (port bound), the gateway's web
    /// listener, and the admin port. Closes the component's database when it fails.
    public static func assemble(
        _ component: ServiceComponent, settings: ServiceSettings, logger: Logger
    ) async throws -> AssembledService {
        do {
            return try await wrap(component, settings: settings, logger: serviceLogger(logger, settings.kind))
        } catch {
            await component.database?.close()
            throw StartupError(service: settings.kind, cause: error)
        }
    }

    private static func wrap(
        _ component: ServiceComponent, settings: ServiceSettings, logger: Logger
    ) async throws -> AssembledService {
        var workers = component.workers
        if let liveStreams = component.liveStreams { workers.append(LiveStreamsCloser(streams: liveStreams)) }
        if settings.kind.recordsAuditEvents, let database = component.database {
            let channel = try channels(
                to: settings.auditAddress, flag: "audit address", tls: try settings.tls?.clientSource(logger: logger),
                tracing: settings.tracing)
            workers.append(
                AuditOutbox.relay(database: database, channel: channel, clock: settings.clock, logger: logger))
        }
        if settings.kind == .entitlements, let database = component.database {
            let channel = try channels(
                to: settings.identityAddress, flag: "identity address",
                tls: try settings.tls?.clientSource(logger: logger), tracing: settings.tracing)
            workers.append(
                EntitlementsComponent.expiryNoticeRelay(
                    database: database, channel: channel, clock: settings.clock, logger: logger))
        }
        var configuration = RPCServer.Configuration(host: settings.host, port: settings.port)
        configuration.tls = try settings.tls?.serverSource(logger: logger)
        var policies: [any ServerInterceptor] = settings.tls.map { [$0.policy] } ?? []
        // Mutual TLS names the gateway by its certificate; without it a backend believes caller
        // metadata only from loopback or with the internal credential.
        if settings.kind != .gateway, settings.tls?.clientCAFile == nil {
            policies.append(CallerMetadataPolicy(internalCredential: settings.internalCredential))
        }
        let (server, health) = ServerAssembly.makeServer(
            services: component.services, configuration: configuration, logger: logger, interceptors: policies,
            tracer: settings.tracing?.serverCallTracer)
        // Probes see the service not ready while its database does not answer.
        component.database?.onAvailabilityChange { available in health.setAvailable(available) }
        try await server.listen()
        var web: WebServer?
        if settings.kind == .gateway, let webPort = settings.webPort {
            do {
                web = try await webServer(
                    serving: component.services, port: webPort, settings: settings, logger: logger)
            } catch {
                await server.closeListener()
                throw error
            }
        }
        let admin: [any Service] =
            settings.adminPort.map { port in
                [
                    AdminHTTPServer(
                        host: settings.host, port: port, registry: metrics,
                        notReady: { [database = component.database] in
                            if let database, !database.isAvailable { return "database unavailable" }
                            return health.isServing ? nil : "shutting down"
                        },
                        testingClock: settings.testingClock, logger: logger)
                ]
            } ?? []
        // A service group shuts services down in reverse order: workers, then the servers, then the
        // admin port (which reports the servers' shutdown meanwhile), then databases.
        let databases: [any Service] = component.database.map { [$0] } ?? []
        let servers: [any Service] = [server] + (web.map { [$0] } ?? [])
        return AssembledService(
            services: databases + admin + servers + workers, server: server, web: web, database: component.database)
    }

    /// `logger` labelled with the service.
    private static func serviceLogger(_ logger: Logger, _ kind: PortalServiceKind) -> Logger {
        var logger = logger
        logger[metadataKey: "service"] = .string(kind.rawValue)
        return logger
    }

    /// The gateway's web listener over `services`, its port bound: HTTPS with the gateway's certificate when
    /// it has one.
    static func webServer(
        serving services: [any RPCService], port: Int, settings: ServiceSettings, logger: Logger
    ) async throws -> WebServer {
        var configuration = WebServer.Configuration(host: settings.host, port: port)
        configuration.tls = try settings.tls?.webSource(logger: logger)
        let siteFolder = try settings.siteDirectory.map(SiteFolder.init(path:))
        if let siteFolder {
            logger.warning(
                "the web portal's files are served from disk, read at each request, not the copy built into this binary (--site-dir)",
                metadata: ["site_dir": "\(siteFolder.root)"])
        }
        let application = WebApplication(
            services: services, interceptors: [], observers: ServerAssembly.standardObservers(logger: logger),
            tracer: settings.tracing?.serverCallTracer, codec: try ProtoJSONCodec(files: ProtoFileRegistry.files),
            siteFolder: siteFolder, logger: logger)
        let server = WebServer(
            configuration: configuration, application: application, logger: logger, eventLoopGroup: EventLoops.shared)
        try await server.listen()
        return server
    }

    /// Calls to every instance of a service listed in `addresses` (`host:port[,host:port…]`), in turn;
    /// each a client span when the process traces.
    static func channels(
        to addresses: String, flag: String, tls: TLSContextSource?, tracing: TracingSystem? = nil
    ) throws -> any RPCChannel {
        let list = addresses.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
            !$0.isEmpty
        }
        let channel: any RPCChannel =
            list.count > 1
            ? RoundRobinChannel(try list.map { try Self.channel(to: $0, flag: flag, tls: tls) })
            : try Self.channel(to: addresses, flag: flag, tls: tls)
        return tracing.map { $0.traced(channel, peer: addresses) } ?? channel
    }

    /// A client channel to another service at `address` (`host:port`), over TLS when `tls` is given.
    static func channel(to address: String, flag: String, tls: TLSContextSource? = nil) throws -> RPCClientChannel {
        // host:port, or [IPv6]:port
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
            (1...65535).contains(port),
            case let host = address[..<colon].trimmingCharacters(in: CharacterSet(charactersIn: "[]")), !host.isEmpty
        else {
            throw RPCError(.invalidArgument, "\(flag): expected host:port, not \(address)")
        }
        var configuration = RPCClientChannel.Configuration()
        configuration.tls = tls
        return RPCClientChannel(host: host, port: port, configuration: configuration, eventLoopGroup: EventLoops.shared)
    }

    /// Runs `services` until a termination signal, then shuts them down gracefully.
    public static func run(_ services: [any Service], logger: Logger) async throws {
        defer { LogWriter.shared.flush() }
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint],
                cancellationSignals: [], logger: logger))
        try await group.run()
    }
}

/// A service that could not start: which one, and why (a port in use, a certificate that does not
/// load, a database that cannot be reached), in one line.
public struct StartupError: Error, CustomStringConvertible {
    /// The service.
    public let service: PortalServiceKind
    /// What failed.
    public let cause: any Error

    /// `gateway: cannot listen on 127.0.0.1:50050: address already in use`.
    public var description: String { "\(service.rawValue): \(cause)" }
}
