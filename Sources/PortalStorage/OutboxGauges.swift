import Metrics
import SQLKit

/// The outbox's backlog as metrics, per topic: messages waiting (`portal_outbox_backlog`) and the
/// age of the oldest (`portal_outbox_oldest_age_seconds`, 0 when none waits). A drain records them
/// after each attempt — counting only when it is behind or failing — so a stuck receiver shows as a
/// growing age.
struct OutboxGauges: Sendable {
    private let topic: String
    private let backlog: Gauge
    private let oldestAge: Gauge

    /// Gauges for `topic`.
    init(topic: String) {
        self.topic = topic
        backlog = Gauge(label: "portal_outbox_backlog", dimensions: [("topic", topic)])
        oldestAge = Gauge(label: "portal_outbox_oldest_age_seconds", dimensions: [("topic", topic)])
    }

    /// Records an empty backlog, after a drain delivered everything it found (no query needed).
    func recordDrained() {
        backlog.record(0)
        oldestAge.record(0)
    }

    /// Reads the backlog from `database` and records it (when a drain is behind or failing); `now` in
    /// milliseconds since the Unix epoch.
    func record(_ database: ServiceDatabase, now: Int64) async throws {
        let topic = topic
        let (waiting, oldest) = try await database.read { database in
            let row = try await database.raw(
                """
                SELECT COUNT(*) AS waiting, MIN(created_at) AS oldest FROM outbox WHERE topic = \(bind: topic) AND delivered_at IS NULL
                """
            ).first()
            return (
                try row?.decode(column: "waiting", as: Int.self) ?? 0,
                try row?.decode(column: "oldest", as: Int64?.self)
            )
        }
        backlog.record(waiting)
        oldestAge.record(oldest.map { Double(max(0, now - $0)) / 1000 } ?? 0)
    }
}
