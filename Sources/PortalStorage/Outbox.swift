import Foundation
import Instrumentation
import SQLKit
import Synchronization

/// The transactional outbox: messages (audit events, mail) written in the same transaction as the
/// change they describe, and delivered later, in order, by a relay that marks them delivered.
///
/// Expects a table `outbox (seq, event_id UNIQUE, org_id, topic, payload, created_at, delivered_at,
/// trace_parent)`: `schema` (or `postgresSchema`), then `traceContextColumn`.
///
/// A message carries the trace context (`traceparent`) of the transaction that wrote it, when that
/// ran inside a trace, so its delivery links back to the request that caused it.
public enum Outbox {
    /// The outbox table and its index, for a service's first migration.
    public static let schema = [
        """
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL UNIQUE,
            org_id TEXT NOT NULL,
            topic TEXT NOT NULL,
            payload BLOB NOT NULL,
            created_at BIGINT NOT NULL,
            delivered_at BIGINT
        )
        """,
        "CREATE INDEX outbox_pending ON outbox (topic, delivered_at, seq)",
    ]

    /// The same table on PostgreSQL.
    public static let postgresSchema = [
        """
        CREATE TABLE outbox (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id TEXT NOT NULL UNIQUE,
            org_id TEXT NOT NULL,
            topic TEXT NOT NULL,
            payload BYTEA NOT NULL,
            created_at BIGINT NOT NULL,
            delivered_at BIGINT
        )
        """,
        "CREATE INDEX outbox_pending ON outbox (topic, delivered_at, seq)",
    ]

    /// The column holding each message's trace context, for a later migration of both backends.
    public static let traceContextColumn = ["ALTER TABLE outbox ADD COLUMN trace_parent TEXT"]

    /// One pending message.
    public struct Record: Sendable {
        /// Position in the outbox; delivery follows it.
        public let sequence: Int64
        /// The message's unique id (the receiver deduplicates by it).
        public let eventID: String
        /// The organization the message belongs to.
        public let organizationID: String
        /// The serialized message.
        public let payload: [UInt8]
        /// The W3C `traceparent` of the transaction that wrote it; nil outside a trace.
        public let traceParent: String?
    }

    /// A message to queue.
    public struct Message: Sendable {
        /// The message's unique id (the receiver deduplicates by it).
        public let eventID: String
        /// The organization the message belongs to.
        public let organizationID: String
        /// The serialized message.
        public let payload: [UInt8]
        /// When the change it records was made (milliseconds).
        public let createdAt: Int64

        /// A message.
        public init(eventID: String, organizationID: String, payload: [UInt8], createdAt: Int64) {
            self.eventID = eventID
            self.organizationID = organizationID
            self.payload = payload
            self.createdAt = createdAt
        }
    }

    /// Adds a message; call inside the transaction that makes the change.
    public static func append(
        _ database: any SQLDatabase, topic: String, eventID: String, organizationID: String, payload: [UInt8],
        now: Int64
    ) async throws {
        try await append(
            database, topic: topic,
            messages: [Message(eventID: eventID, organizationID: organizationID, payload: payload, createdAt: now)])
    }

    /// Adds messages in order with one statement; call inside the transaction that makes the changes.
    ///
    /// On PostgreSQL, transactions appending for one organization take turns until they commit, so an
    /// organization's messages are numbered in commit order: a relay never finds a later one committed
    /// while an earlier one is still in flight in another instance.
    public static func append(_ database: any SQLDatabase, topic: String, messages: [Message]) async throws {
        guard !messages.isEmpty else { return }
        OutboxAppends.current?.insert(topic)
        if database.dialect.name == "postgresql" {
            for organizationID in Set(messages.map(\.organizationID)).sorted() {
                try await database.raw("SELECT pg_advisory_xact_lock(hashtext(\(bind: "outbox:" + organizationID)))")
                    .run()
            }
        }
        let traceParent = currentTraceParent()
        let rows: [SQLQueryString] = messages.map { message in
            "(\(bind: message.eventID), \(bind: message.organizationID), \(bind: topic), \(bind: Data(message.payload)), \(bind: message.createdAt), \(bind: traceParent))"
        }
        try await database.raw(
            "INSERT INTO outbox (event_id, org_id, topic, payload, created_at, trace_parent) VALUES \(rows.joined(separator: ", "))"
        ).run()
    }

    /// The `traceparent` of the span this task runs in; nil outside a trace or when tracing is off.
    private static func currentTraceParent() -> String? {
        guard let context = ServiceContext.current else { return nil }
        var headers: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &headers, using: HeaderDictionary())
        return headers["traceparent"]
    }

    /// The oldest undelivered messages of `topic`, at most `limit`.
    public static func pending(_ database: any SQLDatabase, topic: String, limit: Int) async throws -> [Record] {
        try await database.raw(
            """
            SELECT seq, event_id, org_id, payload, trace_parent FROM outbox
            WHERE topic = \(bind: topic) AND delivered_at IS NULL ORDER BY seq LIMIT \(unsafeRaw: String(limit))
            """
        ).all().map { row in
            Record(
                sequence: try row.decode(column: "seq", as: Int64.self),
                eventID: try row.decode(column: "event_id", as: String.self),
                organizationID: try row.decode(column: "org_id", as: String.self),
                payload: [UInt8](try row.decode(column: "payload", as: Data.self)),
                traceParent: try row.decode(column: "trace_parent", as: String?.self))
        }
    }

    /// Marks messages delivered in one statement; with `scrubPayload` their payload is erased (mail
    /// carrying secrets).
    public static func markDelivered(
        _ database: any SQLDatabase, sequences: [Int64], now: Int64, scrubPayload: Bool = false
    ) async throws {
        guard !sequences.isEmpty else { return }
        let list = sequences.map(String.init).joined(separator: ", ")  // integers only
        if scrubPayload {
            try await database.raw(
                "UPDATE outbox SET delivered_at = \(bind: now), payload = \(bind: Data()) WHERE seq IN (\(unsafeRaw: list))"
            ).run()
        } else {
            try await database.raw("UPDATE outbox SET delivered_at = \(bind: now) WHERE seq IN (\(unsafeRaw: list))")
                .run()
        }
    }
}

/// Trace headers by name, as an outbox row stores them.
struct HeaderDictionary: Injector, Extractor {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }

    func extract(key: String, from carrier: [String: String]) -> String? {
        carrier[key]
    }
}

/// The outbox topics a transaction appended to, so its database can wake their relays once it commits.
final class OutboxAppends: Sendable {
    /// The appends of the transaction running in this task, when its database has relays listening.
    @TaskLocal static var current: OutboxAppends?

    private let appended = Mutex<Set<String>>([])

    /// Notes an append to `topic`.
    func insert(_ topic: String) {
        _ = appended.withLock { $0.insert(topic) }
    }

    /// The topics appended to.
    var topics: Set<String> { appended.withLock { $0 } }
}
