import Foundation
import Logging
import SQLKit
import SQLiteKit
import ServiceLifecycle

/// An SQLite file in WAL mode: writes one at a time on the write connection (SQLite has one writer),
/// reads on a second connection. Every call into libsqlite3 runs on NIO's blocking thread pool.
final class SQLiteEngine: DatabaseEngine {
    /// The write connection's page cache.
    static let writerCacheKiB = 32 * 1024

    private let writer: SQLiteConnection
    private let reader: SQLiteConnection
    private let writeQueue = AsyncSerialQueue()
    private let readQueue = AsyncSerialQueue()

    var backend: SQLBackend { .sqlite }
    var isAvailable: Bool { true }
    func onAvailabilityChange(_ listener: @escaping @Sendable (Bool) -> Void) {}  // a file never goes away

    private init(writer: SQLiteConnection, reader: SQLiteConnection) {
        self.writer = writer
        self.reader = reader
    }

    /// Opens (creating if needed) the file at `path`.
    static func open(path: String, logger: Logger) async throws -> SQLiteEngine {
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
            "PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys = ON",
            "PRAGMA busy_timeout = 5000",
            "PRAGMA cache_size = -\(writerCacheKiB)", "PRAGMA wal_autocheckpoint = 4000",
        ] {
            try await writer.sql().raw(SQLQueryString(pragma)).run()
        }
        let reader = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        try await reader.install(customFunction: unicodeLower)
        for pragma in ["PRAGMA foreign_keys = ON", "PRAGMA busy_timeout = 5000"] {
            try await reader.sql().raw(SQLQueryString(pragma)).run()
        }
        return SQLiteEngine(writer: writer, reader: reader)
    }

    /// Every transaction runs alone on the write connection, so the keys need no lock of their own.
    func transaction<Result: Sendable>(
        serializing keys: [String], isolation: TransactionIsolation, metrics: DatabaseMetrics,
        _ body: @escaping @Sendable (any SQLDatabase) async throws -> Result
    ) async throws -> Result {
        try await writeQueue.run(.transaction, metrics: metrics) {
            let database = writer.sql()
            try await database.raw("BEGIN IMMEDIATE").run()
            do {
                let result = try await body(database)
                try await database.raw("COMMIT").run()
                return result
            } catch {
                try? await database.raw("ROLLBACK").run()
                throw error
            }
        }
    }

    func read<Result: Sendable>(
        metrics: DatabaseMetrics, _ body: @Sendable (any SQLDatabase) async throws -> Result
    ) async throws -> Result {
        try await readQueue.run(.read, metrics: metrics) { try await body(reader.sql()) }
    }

    /// SQLite hands over a statement's rows only all at once: the whole result is read first (callers
    /// read large results in keyset pages instead).
    func stream(
        _ query: SQLQueryString, batchSize: Int, metrics: DatabaseMetrics,
        _ body: ([any SQLRow]) async throws -> Void
    ) async throws {
        let rows = try await read(metrics: metrics) { database in try await database.raw(query).all() }
        for start in stride(from: 0, to: rows.count, by: batchSize) {
            try await body(Array(rows[start..<min(start + batchSize, rows.count)]))
        }
    }

    /// One process owns the file: the lease is always free.
    func withLease<Result: Sendable>(
        _ name: String, _ body: @Sendable () async throws -> Result
    ) async throws -> Result? {
        try await body()
    }

    /// One process owns the file: migrations take the write connection like a transaction.
    func migrate(_ body: @Sendable (any SQLDatabase) async throws -> Void) async throws {
        await writeQueue.acquire()
        do {
            try await body(writer.sql())
            await writeQueue.release()
        } catch {
            await writeQueue.release()
            throw error
        }
    }

    /// Nothing runs in the background: waits for graceful shutdown.
    func run() async {
        try? await gracefulShutdown()
    }

    func close() async {
        await writeQueue.acquire()
        await readQueue.acquire()
        try? await reader.close()
        try? await writer.close()
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

    /// Runs `body` once it is this caller's turn, timing the wait and the run as `operation`.
    nonisolated func run<Result: Sendable>(
        _ operation: DatabaseMetrics.Operation, metrics: DatabaseMetrics, _ body: () async throws -> Result
    ) async throws -> Result {
        let queued = ContinuousClock.now
        await acquire()
        do {
            let result = try await metrics.measure(operation, queuedAt: queued, body)
            await release()
            return result
        } catch {
            await release()
            throw error
        }
    }
}
