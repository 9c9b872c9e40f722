import Metrics

/// One database's timings as metrics: how long transactions and reads wait for their connection and
/// how long they then take (`portal_db_wait_seconds`, `portal_db_duration_seconds`).
struct DatabaseMetrics: Sendable {
    /// The work timed: a write transaction, or reads.
    enum Operation: String { case transaction, read }

    private let transactionWait: Metrics.Timer
    private let transactionDuration: Metrics.Timer
    private let readWait: Metrics.Timer
    private let readDuration: Metrics.Timer

    /// Timers labelled with `database` (the file's name: `entitlements`, `identity`, `audit`).
    init(database: String) {
        func timer(_ label: String, _ operation: Operation) -> Metrics.Timer {
            Metrics.Timer(label: label, dimensions: [("database", database), ("operation", operation.rawValue)])
        }
        transactionWait = timer("portal_db_wait_seconds", .transaction)
        transactionDuration = timer("portal_db_duration_seconds", .transaction)
        readWait = timer("portal_db_wait_seconds", .read)
        readDuration = timer("portal_db_duration_seconds", .read)
    }

    /// Runs `body`, which got its connection now after asking at `queued`: records the wait, then the run.
    func measure<Result>(
        _ operation: Operation, queuedAt queued: ContinuousClock.Instant, _ body: () async throws -> Result
    ) async rethrows -> Result {
        let started = ContinuousClock.now
        (operation == .transaction ? transactionWait : readWait).recordNanoseconds(Self.nanoseconds(started - queued))
        defer {
            (operation == .transaction ? transactionDuration : readDuration).recordNanoseconds(
                Self.nanoseconds(.now - started))
        }
        return try await body()
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        Int64(duration / .nanoseconds(1))
    }
}
