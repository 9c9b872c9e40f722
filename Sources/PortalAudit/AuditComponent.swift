import Foundation
import Logging
import PortalRPC
import PortalStorage

/// The audit service assembled: its database and RPC handler.
public struct AuditComponent: Sendable {
    /// The RPC service to host.
    public let service: any RPCService
    /// The database; run it as a service listed before the server so it closes last.
    public let store: SQLStore

    /// Opens (and migrates) `database`, or `audit.sqlite` under `dataDirectory` without one, and builds the service.
    public static func start(
        dataDirectory: String, database: PostgresLocation? = nil, pageTokens: PageTokenKeys = .random(), logger: Logger
    ) async throws -> AuditComponent {
        let location = database.map(DatabaseLocation.postgres) ?? .sqlite(path: (dataDirectory as NSString).appendingPathComponent("audit.sqlite"))
        let store = try await SQLStore.open(location, name: "audit", migrations: AuditMigrations.all, logger: logger)
        let handler = AuditServiceHandler(store: AuditStore(store: store), clock: { Int64(Date().timeIntervalSince1970 * 1000) }, pageTokens: pageTokens)
        return AuditComponent(service: handler, store: store)
    }
}
