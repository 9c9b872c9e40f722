import Logging
import NIOSSL
import PostgresKit
import PostgresNIO
import SQLKit

/// A PostgreSQL database shared by every instance of a service, through a connection pool.
///
/// Write transactions run `SERIALIZABLE` and are run again when PostgreSQL reports a serialization
/// failure or a deadlock, so every rule a store checks inside a transaction holds across instances
/// exactly as under SQLite's single writer. Transactions that all change one hot row (an audit
/// chain's head, an entitlement's lines) name it as a key: they then take turns on a session advisory
/// lock held from before `BEGIN` until after `COMMIT`, so each starts from the last one's result
/// instead of failing and retrying. Reads run one statement at a time on pooled connections.
final class PostgresEngine: DatabaseEngine {
    /// Attempts a transaction gets before its serialization failure is returned to the caller.
    static let maxAttempts = 30
    /// Pauses between attempts: random, growing to 64 ms, so the transactions that collided do not collide again.
    static let retryBackoff = Backoff(initial: .milliseconds(4), maximum: .milliseconds(64))
    /// The advisory lock key migrations hold (any constant; one per database).
    static let migrationLockKey: Int64 = 0x706f_7274_616c  // "portal"

    private let client: PostgresClient
    /// One connection of its own, for checking the server and migrating before the pool runs.
    private let single: PostgresConnection.Configuration
    private let logger: Logger

    var backend: SQLBackend { .postgres }

    private init(client: PostgresClient, single: PostgresConnection.Configuration, logger: Logger) {
        self.client = client
        self.single = single
        self.logger = logger
    }

    /// Checks that `location` answers (one connection, so a wrong address or password fails at once
    /// with the server's reason), then makes the pool, which connects as work arrives once `run()`
    /// has begun: the database runs it as a service of the service group.
    static func open(_ location: PostgresLocation, logger: Logger) async throws -> PostgresEngine {
        let tls = try tls(location)
        var single = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: tls.connectionTLS)
        single.options.connectTimeout = .seconds(10)
        do {
            let connection = try await PostgresConnection.connect(configuration: single, id: 0, logger: logger)
            try await connection.close()
        } catch {
            throw DatabaseLocationError("database \(location): cannot connect (\(Self.reason(error)))")
        }
        var configuration = PostgresClient.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: tls.clientTLS)
        configuration.options.maximumConnections = location.poolSize
        configuration.options.minimumConnections = 1
        return PostgresEngine(
            client: PostgresClient(configuration: configuration, backgroundLogger: logger), single: single,
            logger: logger)
    }

    /// TLS to the server as `sslmode` asks, for the probe connection and for the pool.
    private static func tls(
        _ location: PostgresLocation
    ) throws -> (connectionTLS: PostgresConnection.Configuration.TLS, clientTLS: PostgresClient.Configuration.TLS) {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch location.tls {
        case .disable:
            return (.disable, .disable)
        case .prefer, .require:
            configuration.certificateVerification = .none  // libpq's meaning: encrypted, not verified
        case .verifyFull:
            configuration.certificateVerification = .fullVerification
            configuration.trustRoots = .file(location.rootCertificateFile ?? "")
        }
        let context = try NIOSSLContext(configuration: configuration)
        return location.tls == .prefer
            ? (.prefer(context), .prefer(configuration)) : (.require(context), .require(configuration))
    }

    func transaction<Result: Sendable>(
        serializing keys: [String], metrics: DatabaseMetrics,
        _ body: @escaping @Sendable (any SQLDatabase) async throws -> Result
    ) async throws -> Result {
        var attempt = 1
        while true {
            do {
                return try await attemptTransaction(serializing: keys, metrics: metrics, body)
            } catch  where attempt < Self.maxAttempts && Self.isRetryable(error) {
                try await Task.sleep(for: Self.retryBackoff.jitteredDelay(afterFailures: attempt))
                attempt += 1
            } catch {
                throw Self.described(error)
            }
        }
    }

    private func attemptTransaction<Result: Sendable>(
        serializing keys: [String], metrics: DatabaseMetrics,
        _ body: @escaping @Sendable (any SQLDatabase) async throws -> Result
    ) async throws -> Result {
        let queued = ContinuousClock.now
        let locks = Set(keys).sorted()  // one order everywhere: no two transactions wait on each other
        return try await client.withConnection { connection in
            if !locks.isEmpty {
                // One round trip for every key, taken in the sorted order of the subquery.
                _ = try await connection.query(
                    "SELECT pg_advisory_lock(hashtext(key)) FROM (SELECT unnest(\(locks)::text[]) AS key ORDER BY 1) AS keys",
                    logger: logger)
            }
            do {
                let result = try await metrics.measure(.transaction, queuedAt: queued) {
                    try await runTransaction(on: connection, body)
                }
                try await unlock(locks, on: connection)
                return result
            } catch {
                try? await unlock(locks, on: connection)
                throw error
            }
        }
    }

    private func runTransaction<Result: Sendable>(
        on connection: PostgresConnection, _ body: @escaping @Sendable (any SQLDatabase) async throws -> Result
    ) async throws -> Result {
        _ = try await connection.query("BEGIN ISOLATION LEVEL SERIALIZABLE", logger: logger)
        do {
            let result = try await body(connection.sql(queryLogLevel: nil))
            _ = try await connection.query("COMMIT", logger: logger)
            return result
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
    }

    /// Releases the transaction's keys: every session lock of the connection, which only it holds.
    private func unlock(_ keys: [String], on connection: PostgresConnection) async throws {
        guard !keys.isEmpty else { return }
        _ = try await connection.query("SELECT pg_advisory_unlock_all()", logger: logger)
    }

    func read<Result: Sendable>(
        metrics: DatabaseMetrics, _ body: @Sendable (any SQLDatabase) async throws -> Result
    ) async throws -> Result {
        let queued = ContinuousClock.now
        do {
            return try await client.withConnection { connection in
                try await metrics.measure(.read, queuedAt: queued) {
                    try await body(connection.sql(queryLogLevel: nil))
                }
            }
        } catch {
            throw Self.described(error)
        }
    }

    /// Holds the session advisory lock `name` on one connection, if free, while `body` works on others.
    func withLease<Result: Sendable>(
        _ name: String, _ body: @Sendable () async throws -> Result
    ) async throws -> Result? {
        do {
            return try await client.withConnection { connection -> Result? in
                let rows = try await connection.query(
                    "SELECT pg_try_advisory_lock(hashtext(\(name))) AS held", logger: logger)
                var held = false
                for try await (value) in rows.decode(Bool.self) { held = value }
                guard held else { return nil }
                do {
                    let result = try await body()
                    _ = try await connection.query("SELECT pg_advisory_unlock(hashtext(\(name)))", logger: logger)
                    return result
                } catch {
                    _ = try? await connection.query("SELECT pg_advisory_unlock(hashtext(\(name)))", logger: logger)
                    throw error
                }
            }
        } catch {
            throw Self.described(error)
        }
    }

    /// Migrates on a connection of its own (the pool may not run yet), holding a session advisory
    /// lock so instances starting together migrate once; closing the connection releases the lock.
    func migrate(_ body: @Sendable (any SQLDatabase) async throws -> Void) async throws {
        do {
            let connection = try await PostgresConnection.connect(configuration: single, id: 0, logger: logger)
            do {
                _ = try await connection.query("SELECT pg_advisory_lock(\(Self.migrationLockKey))", logger: logger)
                try await body(connection.sql(queryLogLevel: nil))
                try await connection.close()
            } catch {
                try? await connection.close()
                throw error
            }
        } catch {
            throw Self.described(error)
        }
    }

    /// Runs the connection pool until graceful shutdown.
    func run() async {
        await client.run()
    }

    /// The pool closes when `run()` ends; a pool that never ran holds no connection.
    func close() async {}

    /// Serialization failures and deadlocks: the transaction may simply be run again.
    static func isRetryable(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError, let state = error.serverInfo?[.sqlState] else { return false }
        return state == "40001" || state == "40P01"
    }

    /// `error` with the server's SQLSTATE and message, when PostgreSQL raised it, for logs (PostgresNIO's
    /// own description hides both); other errors (a domain error from the body) pass unchanged.
    static func described(_ error: any Error) -> any Error {
        guard let error = error as? PSQLError else { return error }
        return DatabaseError(description: "PostgreSQL \(error.serverInfo?[.sqlState] ?? "error"): \(reason(error))")
    }

    /// The server's message for `error`, or its description.
    static func reason(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            if let underlying = error.underlying { return "\(underlying)" }
            return "\(error.code)"
        }
        return "\(error)"
    }
}
