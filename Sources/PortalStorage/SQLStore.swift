import Foundation
import Logging
import NIOPosix
import ServiceLifecycle
import SQLKit
import SQLiteKit

/// A service's own database: an SQLite file in WAL mode, reached through SQLKit so the SQL stays
/// portable to PostgreSQL.
///
/// Writes go through `transaction`, one at a time on the write connection (SQLite has one writer);
/// reads use a second connection and see the last committed state. Every call to libsqlite3 runs on
/// NIO's blocking thread pool, never on an event loop.
///
/// As a lifecycle service it closes the database at graceful shutdown: list it before the services
/// that use it, so it is shut down after them.
public final class SQLStore: Service, Sendable {
    private let writer: SQLiteConnection
    private let reader: SQLiteConnection
    private let writeQueue = AsyncSerialQueue()
    private let readQueue = AsyncSerialQueue()
    private let logger: Logger
    private let metrics: DatabaseMetrics

    private init(writer: SQLiteConnection, reader: SQLiteConnection, name: String, logger: Logger) {
        self.writer = writer
        self.reader = reader
        self.logger = logger
        self.metrics = DatabaseMetrics(database: name)
    }

    /// The write connection's page cache.
    static let writerCacheKiB = 32 * 1024

    /// Opens (creating if needed) the database file at `path` and applies pending `migrations`.
    public static func open(path: String, migrations: [SQLMigration], logger: Logger) async throws -> SQLStore {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let writer = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        try await writer.install(customFunction: unicodeLower)
        // The writer keeps a larger page cache (each write touches a leaf of every index, and
        // re-reading those pages costs more than the write) and checkpoints every 16 MiB of WAL
        // rather than 4 MiB (pages written again in between are copied back once).
        for pragma in [
            "PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys = ON", "PRAGMA busy_timeout = 5000",
            "PRAGMA cache_size = -\(writerCacheKiB)", "PRAGMA wal_autocheckpoint = 4000",
        ] {
            try await writer.sql().raw(SQLQueryString(pragma)).run()
        }
        let reader = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        try await reader.install(customFunction: unicodeLower)
        for pragma in ["PRAGMA foreign_keys = ON", "PRAGMA busy_timeout = 5000"] {
            try await reader.sql().raw(SQLQueryString(pragma)).run()
        }
        let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        let store = SQLStore(writer: writer, reader: reader, name: name, logger: logger)
        try await store.migrate(migrations)
        return store
    }

    /// Runs `body` in one transaction on the write connection: committed when it returns, rolled back when it throws.
    ///
    /// Once started, a transaction always finishes (commit or rollback) even if the calling task is
    /// cancelled meanwhile — a client hanging up must never leave the connection inside an open
    /// transaction — so it runs in a task of its own that the caller awaits.
    public func transaction<Result: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> Result) async throws -> Result {
        try await Task { try await self.runTransaction(body) }.value
    }

    private func runTransaction<Result: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> Result) async throws -> Result {
        let queued = ContinuousClock.now
        await writeQueue.acquire()
        let started = ContinuousClock.now
        metrics.waited(.transaction, from: queued, to: started)
        defer { metrics.ran(.transaction, since: started) }
        do {
            let database = writer.sql()
            try await database.raw("BEGIN IMMEDIATE").run()
            do {
                let result = try await body(database)
                try await database.raw("COMMIT").run()
                await writeQueue.release()
                return result
            } catch {
                try? await database.raw("ROLLBACK").run()
                throw error
            }
        } catch {
            await writeQueue.release()
            throw error
        }
    }

    /// Runs read-only queries on the read connection.
    public func read<Result: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> Result) async throws -> Result {
        let queued = ContinuousClock.now
        await readQueue.acquire()
        let started = ContinuousClock.now
        metrics.waited(.read, from: queued, to: started)
        defer { metrics.ran(.read, since: started) }
        do {
            let result = try await body(reader.sql())
            await readQueue.release()
            return result
        } catch {
            await readQueue.release()
            throw error
        }
    }

    /// Waits for graceful shutdown, then closes the database.
    public func run() async throws {
        try? await gracefulShutdown()
        await close()
    }

    /// Closes both connections (after the transactions in flight).
    public func close() async {
        await writeQueue.acquire()
        await readQueue.acquire()
        try? await reader.close()
        try? await writer.close()
    }

    private func migrate(_ migrations: [SQLMigration]) async throws {
        try await transaction { database in
            try await database.raw("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)").run()
        }
        let applied = try await read { database in
            try await database.raw("SELECT version FROM schema_migrations").all().map { try $0.decode(column: "version", as: Int.self) }
        }
        for migration in migrations.sorted(by: { $0.version < $1.version }) where !applied.contains(migration.version) {
            try await transaction { database in
                for statement in migration.statements {
                    try await database.raw(SQLQueryString(statement)).run()
                }
                let now = Int64(Date().timeIntervalSince1970)
                try await database.raw("INSERT INTO schema_migrations (version, name, applied_at) VALUES (\(bind: migration.version), \(bind: migration.name), \(bind: now))").run()
            }
            logger.info("applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
        }
    }
}

/// SQLite's own `lower()` folds ASCII only; this replacement folds all of Unicode, as PostgreSQL's
/// does, so case-insensitive search and sorting agree across backends ("Émile" matches "émile").
/// Installed on every connection before any migration, so indexes over `lower(...)` agree with it.
private let unicodeLower = SQLiteCustomFunction("lower", argumentCount: 1, pure: true, indirect: true) { arguments in
    switch arguments[0] {
    case .text(let text): text.lowercased()
    case .null: nil
    case .integer(let value): String(value)
    case .float(let value): String(value)
    case .blob(let buffer): String(buffer: buffer).lowercased()
    }
}

/// One versioned schema change: statements applied together, once, in version order.
public struct SQLMigration: Sendable {
    /// Increasing version number.
    public let version: Int
    /// What the migration does.
    public let name: String
    /// Portable SQL statements.
    public let statements: [String]

    /// Creates a migration.
    public init(version: Int, name: String, statements: [String]) {
        self.version = version
        self.name = name
        self.statements = statements
    }
}

/// Lets one task at a time through, in arrival order.
actor AsyncSerialQueue {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}
