import Foundation
import Logging
import PortalApp
import PortalHTTP2
import PortalRPC
import PortalStorage
import ServiceLifecycle

/// Runs `body` with a fresh data folder, the component `start` builds in it assembled exactly as
/// `portal` assembles it (`PortalRuntime.assemble`: the audit relay, the server with its caller
/// policy, the workers, all run in a service group), and a client channel to its server; shuts the
/// group down gracefully after, which closes the database last.
///
/// Without an audit service in the test, `configure` leaves the audit address on a closed port:
/// audit events wait in the outbox, where tests read them.
public func withServiceServer<Result: Sendable>(
    _ kind: PortalServiceKind,
    configure: @Sendable (inout ServiceSettings) -> Void = { _ in },
    start: @Sendable (_ dataDirectory: String, _ logger: Logger) async throws -> ServiceComponent,
    _ body: @Sendable (_ channel: RPCClientChannel, _ dataDirectory: String) async throws -> Result
) async throws -> Result {
    let directory = NSTemporaryDirectory() + "\(kind.rawValue)-test-" + UUID().uuidString
    defer { try? FileManager.default.removeItem(atPath: directory) }
    var logger = Logger(label: "\(kind.rawValue)-test")
    logger.logLevel = .critical
    var settings = ServiceSettings(kind: kind, host: "127.0.0.1", port: 0, dataDirectory: directory)
    settings.auditAddress = "127.0.0.1:1"
    configure(&settings)
    let assembled = try await PortalRuntime.assemble(
        try await start(directory, logger), settings: settings, logger: logger)
    let group = ServiceGroup(
        configuration: .init(services: assembled.services.map { .init(service: $0) }, logger: logger))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        let channel = RPCClientChannel(host: "127.0.0.1", port: try await assembled.server.boundAddress().port!)
        do {
            let result = try await body(channel, directory)
            await channel.close()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return result
        } catch {
            await channel.close()
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
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
