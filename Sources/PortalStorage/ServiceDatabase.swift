import Foundation
import Logging
import SQLKit
import ServiceLifecycle
import Synchronization
import Tracing

/// A service's own database, reached through SQLKit: an SQLite file by default, or a PostgreSQL
/// database that several instances of the service share.
///
/// Writes go through `transaction`, which behaves as if transactions ran one at a time (SQLite's one
/// writer; PostgreSQL's `SERIALIZABLE`, retried on serialization failures). Reads see the last
/// committed state. Blocking database work never runs on an event loop.
///
/// It is a lifecycle service: it runs PostgreSQL's connection pool (transactions wait until the
/// service group runs it) and closes the database at graceful shutdown. List it before the services
/// that use it, so it is shut down after them.
///
/// When the process traces (a tracer is bootstrapped), reads and transactions made inside a trace
/// are spans of their own (`transaction <name>`, `read <name>`).
public final class ServiceDatabase: Service, Sendable {
    private let engine: any DatabaseEngine
    private let logger: Logger
    private let metrics: DatabaseMetrics
    private let name: String
    /// Whether the process traces; decided when the database opens, after tracing was set up.
    let isTraced: Bool
    /// Who to tell when a transaction that appended to an outbox topic commits (its relay).
    private let outboxListeners = Mutex<[String: [@Sendable () -> Void]]>([:])

    private init(engine: any DatabaseEngine, metrics: DatabaseMetrics, name: String, logger: Logger) {
        self.engine = engine
        self.logger = logger
        self.metrics = metrics
        self.name = name
        isTraced = !(InstrumentationSystem.tracer is NoOpTracer)
    }

    /// Which SQL the database speaks, for the statements that differ between backends.
    public var backend: SQLBackend { engine.backend }

    /// Whether the database answers: a PostgreSQL server is checked every second while the service
    /// runs; while it does not answer, reads and transactions fail at once with
    /// `DatabaseUnavailableError` and the service reports itself not ready. A file is always available.
    public var isAvailable: Bool { engine.isAvailable }

    /// Calls `listener` with `isAvailable` each time it changes.
    public func onAvailabilityChange(_ listener: @escaping @Sendable (Bool) -> Void) {
        engine.onAvailabilityChange(listener)
    }

    /// Opens (creating if needed) the SQLite file at `path` and applies pending `migrations`.
    public static func open(path: String, migrations: [SQLMigration], logger: Logger) async throws -> ServiceDatabase {
        let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        return try await open(.sqlite(path: path), name: name, migrations: migrations, logger: logger)
    }

    /// Opens the database at `location` and applies pending `migrations` (on PostgreSQL under an
    /// advisory lock, so instances starting together migrate once); `name` labels its metrics.
    public static func open(
        _ location: DatabaseLocation, name: String, migrations: [SQLMigration], logger: Logger
    ) async throws -> ServiceDatabase {
        let engine: any DatabaseEngine
        switch location {
        case .sqlite(let path): engine = try await SQLiteEngine.open(path: path, logger: logger)
        case .postgres(let postgres): engine = try await PostgresEngine.open(postgres, logger: logger)
        }
        let metrics = DatabaseMetrics(database: name)
        do {
            // Timed as one transaction: the migrations' statements, however many.
            let queued = ContinuousClock.now
            try await engine.migrate { database in
                try await metrics.measure(.transaction, queuedAt: queued) {
                    try await migrate(database, migrations, backend: engine.backend, logger: logger)
                }
            }
        } catch {
            await engine.close()
            throw error
        }
        return ServiceDatabase(engine: engine, metrics: metrics, name: name, logger: logger)
    }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    ///
    /// Once started, a transaction always finishes (commit or rollback) even if the calling task is
    /// cancelled meanwhile — a client hanging up must never leave a connection inside an open
    /// transaction — so it runs in a task of its own that the caller awaits. On PostgreSQL `body` may
    /// run more than once (after a serialization failure): it must do database work only.
    ///
    /// `serializing` names what the transaction changes that many concurrent ones change too (an
    /// organization's audit chain, an entitlement): on PostgreSQL such transactions take turns rather
    /// than collide and retry. SQLite runs every transaction alone anyway.
    ///
    /// `isolation` `.keys` says the keys cover everything the transaction reads and checks (see
    /// `TransactionIsolation`): on PostgreSQL it then never fails because of transactions under
    /// other keys.
    public func transaction<Result: Sendable>(
        serializing keys: [String] = [], isolation: TransactionIsolation = .serializable,
        _ body: @escaping @Sendable (any SQLDatabase) async throws -> Result
    ) async throws -> Result {
        try await spanned("transaction") { try await transact(keys, isolation, body) }
    }

    /// Runs `body` inside a span `<operation> <name>` when it runs inside a trace; else just runs it.
    private func spanned<Result>(_ operation: String, _ body: () async throws -> Result) async throws -> Result {
        guard isTraced, let context = ServiceContext.current else { return try await body() }
        return try await withSpan("\(operation) \(name)", context: context, ofKind: .client) { span in
            span.attributes["db.system"] = backend.systemName
            return try await body()
        }
    }

    private func transact<Result: Sendable>(
        _ keys: [String], _ isolation: TransactionIsolation,
        _ body: @escaping @Sendable (any SQLDatabase) async throws -> Result
    ) async throws -> Result {
        guard outboxListeners.withLock({ !$0.isEmpty }) else {
            return try await Task {
                try await self.engine.transaction(
                    serializing: keys, isolation: isolation, metrics: self.metrics, body)
            }
            .value
        }
        let appends = OutboxAppends()
        let result = try await Task {
            try await OutboxAppends.$current.withValue(appends) {
                try await self.engine.transaction(
                    serializing: keys, isolation: isolation, metrics: self.metrics, body)
            }
        }.value
        for topic in appends.topics {
            for listener in outboxListeners.withLock({ $0[topic] ?? [] }) { listener() }
        }
        return result
    }

    /// Calls `listener` after each committed transaction that appended messages of `topic` to the
    /// outbox, so its relay delivers them at once instead of polling.
    public func onOutboxCommit(topic: String, _ listener: @escaping @Sendable () -> Void) {
        outboxListeners.withLock { $0[topic, default: []].append(listener) }
    }

    /// Runs `body` unless another instance of the service holds the lease `name`, in which case it
    /// returns nil at once. Background workers that must not run twice at the same time across
    /// instances (an outbox relay, the mailer) take turns this way; with SQLite there is one instance.
    public func withLease<Result: Sendable>(
        _ name: String, _ body: @Sendable () async throws -> Result
    ) async throws -> Result? {
        try await engine.withLease(name, body)
    }

    /// Runs read-only queries.
    public func read<Result: Sendable>(
        _ body: @Sendable (any SQLDatabase) async throws -> Result
    ) async throws -> Result {
        try await spanned("read") { try await engine.read(metrics: metrics, body) }
    }

    /// Reads every row of `query` in order, handing them to `body` `batchSize` at a time. On
    /// PostgreSQL it is one statement whose rows are pulled as `body` consumes them (memory stays
    /// flat whatever the result's size); SQLite reads the whole result first, so read large results
    /// there in keyset pages instead.
    public func stream(
        _ query: SQLQueryString, batchSize: Int, _ body: ([any SQLRow]) async throws -> Void
    ) async throws {
        try await spanned("read") { try await engine.stream(query, batchSize: batchSize, metrics: metrics, body) }
    }

    /// Serves until graceful shutdown (on PostgreSQL the connection pool runs here, so the database
    /// serves transactions once its service group runs it), then closes the database.
    public func run() async throws {
        await engine.run()
        await close()
    }

    /// Closes the database (after the transactions in flight).
    public func close() async {
        await engine.close()
    }

    /// Applies the pending `migrations` in version order on `database` (one connection), each in a
    /// transaction of its own with its row in `schema_migrations`.
    private static func migrate(
        _ database: any SQLDatabase, _ migrations: [SQLMigration], backend: SQLBackend, logger: Logger
    ) async throws {
        try await database.raw(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
        ).run()
        let applied = Set(
            try await database.raw("SELECT version FROM schema_migrations").all().map {
                try $0.decode(column: "version", as: Int.self)
            })
        for migration in migrations.sorted(by: { $0.version < $1.version }) where !applied.contains(migration.version) {
            try await database.raw(backend == .sqlite ? "BEGIN IMMEDIATE" : "BEGIN").run()
            do {
                for statement in migration.statements(for: backend) {
                    try await database.raw(SQLQueryString(statement)).run()
                }
                let now = Int64(Date().timeIntervalSince1970)
                try await database.raw(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (\(bind: migration.version), \(bind: migration.name), \(bind: now))"
                ).run()
                try await database.raw("COMMIT").run()
            } catch {
                try? await database.raw("ROLLBACK").run()
                throw error
            }
            logger.info(
                "applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
        }
    }
}

/// One versioned schema change: statements applied together, once, in version order.
///
/// Most SQL is portable; where SQLite and PostgreSQL differ (types, full-text indexes) a migration
/// carries PostgreSQL statements of its own.
public struct SQLMigration: Sendable {
    /// Increasing version number.
    public let version: Int
    /// What the migration does.
    public let name: String
    /// The statements for SQLite (and for PostgreSQL when `postgres` is nil).
    public let statements: [String]
    /// The statements for PostgreSQL, when they differ.
    public let postgres: [String]?

    /// Creates a migration.
    public init(version: Int, name: String, statements: [String], postgres: [String]? = nil) {
        self.version = version
        self.name = name
        self.statements = statements
        self.postgres = postgres
    }

    /// The statements to run on `backend`.
    func statements(for backend: SQLBackend) -> [String] {
        backend == .postgres ? postgres ?? statements : statements
    }
}
