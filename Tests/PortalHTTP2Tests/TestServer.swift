import Logging
import NIOCore
import PortalApp
import PortalHTTP2
import PortalRPC
import PortalTestServices

/// Runs `body` against a real server on an ephemeral loopback port, then shuts it down gracefully.
func withEchoServer<Result: Sendable>(
    configure: (inout RPCServer.Configuration) -> Void = { _ in },
    interceptors: [any ServerInterceptor] = [],
    _ body: @Sendable (RPCServer, Int) async throws -> Result
) async throws -> Result {
    var configuration = RPCServer.Configuration(host: "127.0.0.1", port: 0)
    configure(&configuration)
    var logger = Logger(label: "test-server")
    logger.logLevel = .critical
    let (server, _) = ServerAssembly.makeServer(
        services: [EchoService(), BenchService()], configuration: configuration, logger: logger,
        interceptors: interceptors)
    return try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask {
            try await server.run()
            return nil
        }
        let port = try await server.boundAddress().port!
        do {
            let result = try await body(server, port)
            server.beginGracefulShutdown()
            while let next = try await group.next() { if next != nil { break } }
            return result
        } catch {
            server.beginGracefulShutdown()
            group.cancelAll()
            throw error
        }
    }
}

/// A client channel to a local test server.
func channel(to port: Int, configure: (inout RPCClientChannel.Configuration) -> Void = { _ in }) -> RPCClientChannel {
    var configuration = RPCClientChannel.Configuration()
    configure(&configuration)
    return RPCClientChannel(host: "127.0.0.1", port: port, configuration: configuration)
}
