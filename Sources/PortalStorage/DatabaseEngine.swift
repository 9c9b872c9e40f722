import SQLKit

/// What `ServiceDatabase` needs of a database: write transactions that behave as if run one at a time,
/// reads of committed data, one connection at a time for migrating the schema, and a lifetime.
protocol DatabaseEngine: Sendable {
    /// Which SQL the database speaks.
    var backend: SQLBackend { get }

    /// Whether the database answered its last check (always true for a file).
    var isAvailable: Bool { get }

    /// Calls `listener` with `isAvailable` each time it changes.
    func onAvailabilityChange(_ listener: @escaping @Sendable (Bool) -> Void)

    /// Runs `body` in one write transaction, committed when it returns, rolled back when it throws;
    /// it may run `body` again when the database asks for a retry (PostgreSQL serialization failures).
    /// Transactions naming a common key in `serializing` run one after another.
    func transaction<Result: Sendable>(
        serializing keys: [String], isolation: TransactionIsolation, metrics: DatabaseMetrics,
        _ body: @escaping @Sendable (any SQLDatabase) async throws -> Result
    ) async throws -> Result

    /// Runs read-only queries, each of which sees committed data.
    func read<Result: Sendable>(
        metrics: DatabaseMetrics, _ body: @Sendable (any SQLDatabase) async throws -> Result
    ) async throws -> Result

    /// Reads the rows of `query` in order and hands them to `body` `batchSize` at a time.
    func stream(
        _ query: SQLQueryString, batchSize: Int, metrics: DatabaseMetrics,
        _ body: ([any SQLRow]) async throws -> Void
    ) async throws

    /// Runs `body` unless another instance holds the lease `name` (then returns nil at once).
    func withLease<Result: Sendable>(
        _ name: String, _ body: @Sendable () async throws -> Result
    ) async throws -> Result?

    /// Runs `body` on one connection of its own while no other instance migrates the same database;
    /// it manages its transactions itself. Works before `run()` has begun.
    func migrate(_ body: @Sendable (any SQLDatabase) async throws -> Void) async throws

    /// Serves until graceful shutdown (PostgreSQL's connection pool runs here).
    func run() async

    /// Closes the database after the work in flight.
    func close() async
}

/// How a transaction is kept from the effects of concurrent ones.
public enum TransactionIsolation: Sendable {
    /// As if transactions ran one at a time, whatever they read (PostgreSQL `SERIALIZABLE`, retried
    /// on serialization failures).
    case serializable
    /// Its keys (`serializing`) cover everything it reads and checks, and unique indexes the rest:
    /// holding them is enough. On PostgreSQL it runs `READ COMMITTED` while holding its keys, so
    /// transactions under other keys never fail it (serializable transactions can, when they share
    /// index pages).
    case keys
}

/// The SQL a service's database speaks, for the few statements that differ (full-text search, DDL).
public enum SQLBackend: String, Sendable {
    case sqlite
    case postgres

    /// The backend `database` speaks.
    public init(_ database: any SQLDatabase) {
        self = database.dialect.name == "postgresql" ? .postgres : .sqlite
    }

    /// The name OpenTelemetry gives the database system (`db.system`).
    var systemName: String { self == .postgres ? "postgresql" : "sqlite" }
}
