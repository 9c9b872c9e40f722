import ArgumentParser
import Logging
import PortalApp
import PortalHTTP2
import PortalTestServices
import ServiceLifecycle

/// `portal-test-server`: serves the Echo and Bench services for interoperability tests and benchmarks.
@main
struct TestServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portal-test-server", abstract: "Serve portal.testing.v1.Echo and bench.v1.Bench.")

    @Option(help: "Address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "Port to listen on.")
    var port: Int = 50060

    @Option(name: .customLong("log-level"), help: "Log level.")
    var logLevel: String = "info"

    @Option(
        name: .customLong("admin-port"),
        help: "Port for /metrics, /healthz and /readyz (none by default; metrics are recorded only with it).")
    var adminPort: Int?

    func run() async throws {
        PortalRuntime.bootstrapLogging(level: Logger.Level(rawValue: logLevel) ?? .info)
        let logger = Logger(label: "portal-test-server")
        if adminPort != nil { PortalRuntime.bootstrapMetrics() }
        let (server, health) = ServerAssembly.makeServer(
            services: [EchoService(), BenchService()], configuration: RPCServer.Configuration(host: host, port: port),
            logger: logger)
        let admin: [any Service] =
            adminPort.map { port in
                [
                    AdminHTTPServer(
                        host: host, port: port, registry: PortalRuntime.metrics,
                        notReady: { health.isServing ? nil : "shutting down" },
                        logger: logger)
                ]
            } ?? []
        try await PortalRuntime.run(admin + [server], logger: logger)
    }
}
