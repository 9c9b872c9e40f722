import Foundation
import Logging
import PortalRPC
import PortalStorage
import PortalTime

/// The audit service assembled: its database and RPC handler.
public struct AuditComponent: Sendable {
    /// The RPC service to host.
    public let service: any RPCService
    /// The database; run it as a service listed before the server so it closes last.
    public let database: ServiceDatabase
    /// The event streams (WatchEvents); close them when shutdown begins.
    public let liveStreams: LiveStreams

    /// Opens (and migrates) `database`, or `audit.sqlite` under `dataDirectory` without one, and builds
    /// the service; `clock` dates what it receives.
    public static func start(
        dataDirectory: String, database: PostgresLocation? = nil, pageTokens: PageTokenKeys = .random(),
        clock: any ServiceClock = .system,
        logger: Logger
    ) async throws -> AuditComponent {
        let location =
            database.map(DatabaseLocation.postgres)
            ?? .sqlite(path: (dataDirectory as NSString).appendingPathComponent("audit.sqlite"))
        let database = try await ServiceDatabase.open(
            location, name: "audit", migrations: AuditMigrations.all, logger: logger)
        let liveStreams = LiveStreams(
            closingMessage: "the audit service is shutting down; reconnect with the last cursor received")
        let handler = AuditServiceHandler(
            store: AuditStore(database: database), clock: clock, pageTokens: pageTokens, liveStreams: liveStreams)
        return AuditComponent(service: handler, database: database, liveStreams: liveStreams)
    }
}
