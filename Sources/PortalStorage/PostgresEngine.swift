import Logging
import NIOSSL
import PostgresKit
import PostgresNIO
import SQLKit
import ServiceLifecycle
import Synchronization

/// A PostgreSQL database shared by every instance of a service, through a connection pool.
///
/// Write transactions run `SERIALIZABLE` and are run again when PostgreSQL reports a serialization
/// failure or a deadlock, so every rule a store checks inside a transaction holds across instances
/// exactly as under SQLite's single writer. Transactions that all change one hot row (an audit
/// chain's head, an entitlement's lines) name it as a key: they then take turns on a session advisory
/// lock held from before `BEGIN` until after `COMMIT`, so each starts from the last one's result
/// instead of failing and retrying. Reads run one statement at a time on pooled connections.
///
/// While it runs, a connection of its own checks the server every second. When the server stops
/// answering, work fails at once with `DatabaseUnavailableError` (as does work whose connection
/// breaks) instead of queueing for the pool; the pool reconnects when the server is back.
final class PostgresEngine: DatabaseEngine {
    /// Attempts a transaction gets before its serialization failure is returned to the caller.
    static let maxAttempts = 30
    /// Pauses between attempts: random, growing to 64 ms, so the transactions that collided do not collide again.
    static let retryBackoff = Backoff(initial: .milliseconds(4), maximum: .milliseconds(64))
    /// The advisory lock key migrations hold (any constant; one per database).
    static let migrationLockKey: Int64 = 0x706f_7274_616c  // "portal"
    /// How often the server is checked, and how long a check may take before it counts as failed.
    static let checkInterval = Duration.seconds(1)
    static let checkTimeout = Duration.seconds(2)

    private let client: PostgresClient
    /// One connection of its own, for checking the server and migrating before the pool runs.
    private let single: PostgresConnection.Configuration
    private let logger: Logger
    /// Whether the server answered its last check.
    private let answering = Atomic<Bool>(true)
    /// Who to tell when that changes.
    private let availabilityListeners = Mutex<[@Sendable (Bool) -> Void]>([])
    /// Work waiting for a pool connection, abandoned when the server stops answering.
    private let waitingLoans = WaitingLoans()

    var backend: SQLBackend { .postgres }
    var isAvailable: Bool { answering.load(ordering: .relaxed) }

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
        single.options.additionalStartupParameters = sessionSettings
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
        configuration.options.additionalStartupParameters = sessionSettings
        return PostgresEngine(
            client: PostgresClient(configuration: configuration, backgroundLogger: logger), single: single,
            logger: logger)
    }

    /// Settings of every session. A scan of a whole large table starts at its first page rather than
    /// where another scan of it is (PostgreSQL's synchronized scans): a capped count that the planner
    /// runs as a scan stopping at its cap (an organization's search matches, up to 10,000) then reads
    /// the same pages every time, instead of now and then starting in other organizations' rows and
    /// taking ten times as long.
    private static let sessionSettings = [("synchronize_seqscans", "off")]

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
        serializing keys: [String], isolation: TransactionIsolation, metrics: DatabaseMetrics,
        _ body: @escaping @Sendable (any SQLDatabase) async throws -> Result
    ) async throws -> Result {
        try checkAvailable()
        var attempt = 1
        while true {
            do {
                return try await attemptTransaction(serializing: keys, isolation: isolation, metrics: metrics, body)
            } catch  where attempt < Self.maxAttempts && Self.isRetryable(error) {
                try await Task.sleep(for: Self.retryBackoff.jitteredDelay(afterFailures: attempt))
                attempt += 1
            } catch {
                throw Self.described(error)
            }
        }
    }

    private func attemptTransaction<Result: Sendable>(
        serializing keys: [String], isolation: TransactionIsolation, metrics: DatabaseMetrics,
        _ body: @escaping @Sendable (any SQLDatabase) async throws -> Result
    ) async throws -> Result {
        let queued = ContinuousClock.now
        let locks = Set(keys).sorted()  // one order everywhere: no two transactions wait on each other
        return try await withConnection { connection in
            if !locks.isEmpty {
                // One round trip for every key, taken in the sorted order of the subquery.
                try await connection.run(
                    "SELECT pg_advisory_lock(hashtext(key)) FROM (SELECT unnest(\(locks)::text[]) AS key ORDER BY 1) AS keys",
                    logger: logger)
            }
            do {
                let result = try await metrics.measure(.transaction, queuedAt: queued) {
                    try await runTransaction(on: connection, isolation: isolation, body)
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
        on connection: PostgresConnection, isolation: TransactionIsolation,
        _ body: @escaping @Sendable (any SQLDatabase) async throws -> Result
    ) async throws -> Result {
        switch isolation {
        case .serializable: try await connection.run("BEGIN ISOLATION LEVEL SERIALIZABLE", logger: logger)
        case .keys: try await connection.run("BEGIN ISOLATION LEVEL READ COMMITTED", logger: logger)
        }
        do {
            let result = try await body(PostgresSQLDatabase(connection: connection))
            try await connection.run("COMMIT", logger: logger)
            return result
        } catch {
            _ = try? await connection.run("ROLLBACK", logger: logger)
            throw error
        }
    }

    /// Releases the transaction's keys: every session lock of the connection, which only it holds.
    private func unlock(_ keys: [String], on connection: PostgresConnection) async throws {
        guard !keys.isEmpty else { return }
        try await connection.run("SELECT pg_advisory_unlock_all()", logger: logger)
    }

    func read<Result: Sendable>(
        metrics: DatabaseMetrics, _ body: @Sendable (any SQLDatabase) async throws -> Result
    ) async throws -> Result {
        try await reading(metrics: metrics) { connection in try await body(PostgresSQLDatabase(connection: connection))
        }
    }

    /// One statement on one connection: its rows are pulled as `body` consumes them (PostgresNIO's
    /// row sequence asks the server for more as its buffer drains), decoded here, and handed over in
    /// batches; memory holds a batch and the driver's read-ahead, whatever the result's size.
    func stream(
        _ query: SQLQueryString, batchSize: Int, metrics: DatabaseMetrics,
        _ body: ([any SQLRow]) async throws -> Void
    ) async throws {
        try await reading(metrics: metrics) { connection in
            let rows = try await PostgresSQLDatabase(connection: connection).query(query)
            let columns = ColumnIndex()
            var batch: [any SQLRow] = []
            batch.reserveCapacity(batchSize)
            for try await row in rows {
                batch.append(PostgresSQLRow(row, columns: columns))
                if batch.count == batchSize {
                    try await body(batch)
                    batch.removeAll(keepingCapacity: true)
                }
            }
            if !batch.isEmpty { try await body(batch) }
        }
    }

    /// Runs read-only work on a pooled connection, timed as a read, its errors described.
    private func reading<Result>(
        metrics: DatabaseMetrics, _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try checkAvailable()
        let queued = ContinuousClock.now
        do {
            return try await withConnection { connection in
                try await metrics.measure(.read, queuedAt: queued) { try await body(connection) }
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
            return try await withConnection { connection -> Result? in
                let rows = try await connection.run(
                    "SELECT pg_try_advisory_lock(hashtext(\(name))) AS held", logger: logger)
                var held = false
                for try await (value) in rows.decode(Bool.self) { held = value }
                guard held else { return nil }
                do {
                    let result = try await body()
                    try await connection.run("SELECT pg_advisory_unlock(hashtext(\(name)))", logger: logger)
                    return result
                } catch {
                    _ = try? await connection.run("SELECT pg_advisory_unlock(hashtext(\(name)))", logger: logger)
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
                try await connection.run("SELECT pg_advisory_lock(\(Self.migrationLockKey))", logger: logger)
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

    func onAvailabilityChange(_ listener: @escaping @Sendable (Bool) -> Void) {
        availabilityListeners.withLock { $0.append(listener) }
    }

    /// A pool connection for `body`. The wait for it ends with `DatabaseUnavailableError` when the
    /// server stops answering meanwhile (the pool would otherwise wait for it to come back).
    private func withConnection<Result>(_ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        try await ConnectionLoan.withConnection(from: client, waiting: waitingLoans, body)
    }

    /// Fails at once while the server does not answer its checks, rather than queueing for the pool.
    private func checkAvailable() throws {
        guard isAvailable else {
            throw DatabaseUnavailableError(description: "PostgreSQL does not answer (checked every second)")
        }
    }

    /// Runs the connection pool, and the server's checks beside it, until graceful shutdown.
    func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.client.run() }
            group.addTask { await cancelWhenGracefulShutdown { await self.checkServer() } }
        }
    }

    /// Checks the server every `checkInterval` with `SELECT 1` on a connection of its own (opened
    /// again after a failure) and records whether it answered, logging each change.
    private func checkServer() async {
        var connection: PostgresConnection?
        while !Task.isCancelled {
            let answered = await check(&connection)
            if answering.exchange(answered, ordering: .relaxed) != answered {
                if answered {
                    logger.notice("PostgreSQL answers again")
                } else {
                    logger.error("PostgreSQL does not answer: failing database work until it does")
                    waitingLoans.abandonAll(
                        DatabaseUnavailableError(
                            description: "PostgreSQL stopped answering while this waited for a connection"))
                }
                for listener in availabilityListeners.withLock({ $0 }) { listener(answered) }
            }
            try? await Task.sleep(for: Self.checkInterval)
        }
        try? await connection?.close()
    }

    /// Whether `SELECT 1` on `connection` (connected first when nil; dropped when it fails) answers
    /// within `checkTimeout`. A connection to a server that went away may never answer (nor heed
    /// cancellation), so the check is not awaited past its time: it finishes on its own, and a
    /// connection it makes too late is closed.
    private func check(_ connection: inout PostgresConnection?) async -> Bool {
        let current = connection
        let (single, logger) = (single, logger)
        let outcome = CheckOutcome()
        let answered: PostgresConnection? = await withCheckedContinuation { continuation in
            outcome.wait(continuation)
            Task {
                var probe = current
                do {
                    if probe == nil {
                        probe = try await PostgresConnection.connect(configuration: single, id: 0, logger: logger)
                    }
                    try await probe!.run("SELECT 1", logger: logger)
                } catch {
                    probe = nil
                }
                if !outcome.finish(probe), let probe, probe !== current { try? await probe.close() }
            }
            Task {
                try? await Task.sleep(for: Self.checkTimeout)
                outcome.finish(nil)
            }
        }
        if answered == nil, let current { Task { try? await current.close() } }
        connection = answered
        return answered != nil
    }

    /// The pool closes when `run()` ends; a pool that never ran holds no connection.
    func close() async {}

    /// Serialization failures and deadlocks: the transaction may simply be run again.
    static func isRetryable(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError, let state = error.serverInfo?[.sqlState] else { return false }
        return state == "40001" || state == "40P01"
    }

    /// `error` with the server's SQLSTATE and message, when PostgreSQL raised it, for logs (PostgresNIO's
    /// own description hides both): `DatabaseUnavailableError` when the connection failed or the
    /// server is shutting down or starting, `DatabaseDuplicateError` for a unique violation, else
    /// `DatabaseError`. Other errors (a domain error from
    /// the body) pass unchanged.
    static func described(_ error: any Error) -> any Error {
        // The pool's own errors (its circuit breaker, after a minute without a connection) are of a
        // type PostgresNIO does not export.
        if String(describing: type(of: error)) == "ConnectionPoolError" {
            return DatabaseUnavailableError(description: "PostgreSQL connection pool: \(error)")
        }
        guard let error = error as? PSQLError else { return error }
        let state = error.serverInfo?[.sqlState]
        let description = "PostgreSQL \(state ?? "error"): \(reason(error))"
        if isUnavailable(error, state: state) { return DatabaseUnavailableError(description: description) }
        if isRetryable(error) { return DatabaseConflictError(description: description) }
        if state == "23505" {
            return DatabaseDuplicateError(
                constraint: error.serverInfo?[.constraintName] ?? "", description: description)
        }
        return DatabaseError(description: description)
    }

    /// A broken or refused connection, or a server shutting down, crashed or starting up (SQLSTATE
    /// class 08, 57P01–57P03): the database, not the request, is at fault.
    private static func isUnavailable(_ error: PSQLError, state: String?) -> Bool {
        if let state { return state.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(state) }
        return [.connectionError, .serverClosedConnection, .uncleanShutdown, .clientClosedConnection, .poolClosed]
            .contains(error.code)
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

/// The first result of a server check: the probe's or the timeout's, whichever comes first.
private final class CheckOutcome: Sendable {
    private let continuation = Mutex<CheckedContinuation<PostgresConnection?, Never>?>(nil)

    /// Waits with `continuation` for the first result.
    func wait(_ continuation: CheckedContinuation<PostgresConnection?, Never>) {
        self.continuation.withLock { $0 = continuation }
    }

    /// Hands over `result` if it is the first; false when another came first.
    @discardableResult
    func finish(_ result: PostgresConnection?) -> Bool {
        guard let waiting = continuation.withLock({ $0.take() }) else { return false }
        waiting.resume(returning: result)
        return true
    }
}
