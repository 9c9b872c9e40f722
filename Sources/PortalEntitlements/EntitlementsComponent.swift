import Foundation
import Logging
import PortalRPC
import PortalStorage
import PortalTime
import ServiceLifecycle

/// The entitlements service assembled: its database, RPC handler and expiry sweeper.
public struct EntitlementsComponent: Sendable {
    /// The RPC service to host.
    public let service: any RPCService
    /// Workers to run beside the server (the expiry sweeper).
    public let workers: [any Service]
    /// The database; run it as a service listed before the server so it closes last.
    public let database: ServiceDatabase

    /// Opens (and migrates) `database`, or `entitlements.sqlite` under `dataDirectory` without one, and
    /// builds the service.
    /// `clock` dates records and paces the expiry sweeper.
    public static func start(
        dataDirectory: String, database: PostgresLocation? = nil, pageTokens: PageTokenKeys = .random(),
        expiryNoticeDays: [Int] = [30, 7, 1], clock: any ServiceClock = .system,
        logger: Logger
    ) async throws -> EntitlementsComponent {
        try await start(
            dataDirectory: dataDirectory, database: database, pageTokens: pageTokens,
            expiryNoticeDays: expiryNoticeDays, clock: clock, logger: logger, searchLimits: .init())
    }

    /// `start(dataDirectory:database:pageTokens:clock:logger:)` with other search limits (tests reach every
    /// search plan with few rows).
    static func start(
        dataDirectory: String, database: PostgresLocation? = nil, pageTokens: PageTokenKeys = .random(),
        expiryNoticeDays: [Int] = [30, 7, 1], clock: any ServiceClock = .system,
        logger: Logger, searchLimits: EntitlementsStore.SearchLimits
    ) async throws -> EntitlementsComponent {
        let location =
            database.map(DatabaseLocation.postgres)
            ?? .sqlite(path: (dataDirectory as NSString).appendingPathComponent("entitlements.sqlite"))
        let database = try await ServiceDatabase.open(
            location, name: "entitlements", migrations: EntitlementsMigrations.all, logger: logger)
        let entitlements = EntitlementsStore(database: database, searchLimits: searchLimits)
        return EntitlementsComponent(
            service: EntitlementsServiceHandler(store: entitlements, clock: clock, pageTokens: pageTokens),
            workers: [
                ExpirySweeper(store: entitlements, noticeDays: expiryNoticeDays, clock: clock, logger: logger)
            ], database: database)
    }
}

extension EntitlementsComponent {
    /// The relay handing expiry notices to identity (over `channel`), which mails them to the Admins.
    public static func expiryNoticeRelay(
        database: ServiceDatabase, channel: any RPCChannel, clock: any ServiceClock, logger: Logger
    ) -> any Service {
        ExpiryNotice.relay(database: database, channel: channel, clock: clock, logger: logger)
    }
}

/// Records one `LICENSES` event for each entitlement when its expiration date passes, and the expiry
/// notices due (see `ExpiryNotice`), checked each minute.
final class ExpirySweeper: Service, Sendable {
    private let store: EntitlementsStore
    private let noticeDays: [Int]
    private let clock: any ServiceClock
    private let interval: Duration
    private let logger: Logger

    init(
        store: EntitlementsStore, noticeDays: [Int], clock: any ServiceClock, interval: Duration = .seconds(60),
        logger: Logger
    ) {
        self.store = store
        self.noticeDays = noticeDays
        self.clock = clock
        self.interval = interval
        self.logger = logger
    }

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                while try await store.recordExpirations(now: clock.milliseconds()) > 0 {}
                while try await store.recordExpiryNotices(now: clock.milliseconds(), thresholds: noticeDays) > 0 {}
            } catch {
                logger.error("recording expirations failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { [clock, interval] in try await clock.sleep(for: interval) }
        }
    }
}
