import Foundation
import Logging
import PortalApp
import PortalHTTP2
import PortalRPC
import PortalStorage

/// Runs `body` with a fresh data folder, a real server for the services `start` builds in it, and a
/// client channel to that server; closes the channel, stops the server and closes `database` after.
public func withServiceServer<Result: Sendable>(
    named name: String,
    start: @Sendable (_ dataDirectory: String, _ logger: Logger) async throws -> (services: [any RPCService], database: SQLStore),
    _ body: @Sendable (_ channel: RPCClientChannel, _ dataDirectory: String) async throws -> Result
) async throws -> Result {
    let directory = NSTemporaryDirectory() + "\(name)-test-" + UUID().uuidString
    defer { try? FileManager.default.removeItem(atPath: directory) }
    var logger = Logger(label: "\(name)-test")
    logger.logLevel = .critical
    let (services, database) = try await start(directory, logger)
    let (server, _) = ServerAssembly.makeServer(
        services: services, configuration: RPCServer.Configuration(host: "127.0.0.1", port: 0), logger: logger)
    return try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask {
            try await server.run()
            return nil
        }
        let channel = RPCClientChannel(host: "127.0.0.1", port: try await server.boundAddress().port!)
        do {
            let result = try await body(channel, directory)
            await channel.close()
            server.beginGracefulShutdown()
            while let next = try await group.next() { if next != nil { break } }
            await database.close()
            return result
        } catch {
            await channel.close()
            server.beginGracefulShutdown()
            group.cancelAll()
            await database.close()
            throw error
        }
    }
}

/// Hands a value built inside `withServiceServer`'s `start` to its `body`.
public final class ComponentBox<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value?

    /// An empty box.
    public init() {}

    /// The value, once set (set once, before the body runs).
    public var value: Value? {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
