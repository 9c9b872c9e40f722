import ArgumentParser
import Logging
import PortalApp
import PortalHTTP2
import PortalTestServices

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

    func run() async throws {
        PortalRuntime.bootstrapLogging(level: Logger.Level(rawValue: logLevel) ?? .info)
        let logger = Logger(label: "portal-test-server")
        let (server, _) = ServerAssembly.makeServer(
            services: [EchoService(), BenchService()], configuration: RPCServer.Configuration(host: host, port: port), logger: logger)
        try await PortalRuntime.run([server], logger: logger)
    }
}
