import Foundation
import PortalRPC
import PortalStorage
import SQLKit

/// Webhook endpoints and their delivery queue: deliveries are queued in the transaction that
/// appends their events (nothing recorded is ever missed, nothing is queued twice), and each
/// endpoint's queue is sent in order, one delivery at a time.
final class WebhookStore: Sendable {
    /// Most endpoints one organization may register.
    static let maxPerOrganization = 20
    /// How long the secret before a rotation keeps signing beside the new one.
    static let rotationOverlapMilliseconds: Int64 = 24 * 3_600_000

    let database: ServiceDatabase

    init(database: ServiceDatabase) {
        self.database = database
    }

    /// Changes to an endpoint; nil leaves a field as it is.
    struct Changes: Sendable {
        var url: String?
        var eventTypes: [String]?
        var description: String?
        var enabled: Bool?
        /// A new sealed secret (rotation).
        var sealedSecret: [UInt8]?
    }

    func create(
        organizationID: String, url: String, eventTypes: [String], description: String, sealedSecret: [UInt8],
        now: Int64
    ) async throws -> WebhookRecord {
        let id = newIdentifier("whk_")
        return try await database.transaction(serializing: ["webhooks:" + organizationID]) { database in
            let count =
                try await database.raw("SELECT COUNT(*) AS n FROM webhooks WHERE org_id = \(bind: organizationID)")
                .first()?.decode(column: "n", as: Int64.self) ?? 0
            guard count < Self.maxPerOrganization else {
                throw RPCError(
                    .failedPrecondition,
                    "the organization has \(Self.maxPerOrganization) webhooks already; delete one first")
            }
            try await database.raw(
                """
                INSERT INTO webhooks (webhook_id, org_id, url, event_types, description, enabled, secret, created_at)
                VALUES (\(bind: id), \(bind: organizationID), \(bind: url), \(bind: eventTypes.joined(separator: ",")),
                        \(bind: description), 1, \(bind: Data(sealedSecret)), \(bind: now))
                """
            ).run()
            return try await Self.webhook(database, organizationID: organizationID, id: id)!
        }
    }

    func list(organizationID: String) async throws -> [WebhookRecord] {
        try await database.read { database in
            try await database.raw(
                """
                SELECT \(unsafeRaw: WebhookRecord.columns) FROM webhooks WHERE org_id = \(bind: organizationID)
                ORDER BY created_at, webhook_id
                """
            ).all().map(WebhookRecord.init(row:))
        }
    }

    func webhook(organizationID: String, id: String) async throws -> WebhookRecord? {
        try await database.read { database in try await Self.webhook(database, organizationID: organizationID, id: id) }
    }

    /// Applies `changes`; nil when the organization has no such endpoint.
    func update(organizationID: String, id: String, changes: Changes, now: Int64) async throws -> WebhookRecord? {
        try await database.transaction(serializing: ["webhooks:" + organizationID]) { database in
            guard let current = try await Self.webhook(database, organizationID: organizationID, id: id) else {
                return nil
            }
            var sets: [SQLQueryString] = []
            if let url = changes.url { sets.append("url = \(bind: url)") }
            if let types = changes.eventTypes { sets.append("event_types = \(bind: types.joined(separator: ","))") }
            if let description = changes.description { sets.append("description = \(bind: description)") }
            if let enabled = changes.enabled { sets.append("enabled = \(bind: enabled ? 1 : 0)") }
            if let secret = changes.sealedSecret {
                sets.append("secret = \(bind: Data(secret))")
                sets.append("previous_secret = \(bind: Data(current.sealedSecret))")
                sets.append("previous_secret_expires_at = \(bind: now + Self.rotationOverlapMilliseconds)")
            }
            if !sets.isEmpty {
                try await database.raw(
                    "UPDATE webhooks SET \(sets.joined(separator: ", ")) WHERE webhook_id = \(bind: id)"
                ).run()
            }
            return try await Self.webhook(database, organizationID: organizationID, id: id)
        }
    }

    /// Deletes the endpoint and its queue; false when the organization has no such endpoint.
    func delete(organizationID: String, id: String) async throws -> Bool {
        try await database.transaction(serializing: ["webhooks:" + organizationID]) { database in
            guard try await Self.webhook(database, organizationID: organizationID, id: id) != nil else { return false }
            try await database.raw("DELETE FROM webhook_deliveries WHERE webhook_id = \(bind: id)").run()
            try await database.raw("DELETE FROM webhooks WHERE webhook_id = \(bind: id)").run()
            return true
        }
    }

    private static func webhook(
        _ database: any SQLDatabase, organizationID: String, id: String
    ) async throws
        -> WebhookRecord?
    {
        try await database.raw(
            """
            SELECT \(unsafeRaw: WebhookRecord.columns) FROM webhooks
            WHERE webhook_id = \(bind: id) AND org_id = \(bind: organizationID)
            """
        ).first().map(WebhookRecord.init(row:))
    }

    // MARK: The queue

    /// An event appended, as the queue needs it.
    struct AppendedEvent: Sendable {
        let organizationID: String
        let eventID: String
        let organizationSequence: Int64
        let eventType: String
    }

    /// Queues each appended event for its organization's enabled endpoints that receive its type,
    /// inside the appending transaction; returns how many deliveries were queued.
    @discardableResult
    static func enqueue(_ database: any SQLDatabase, _ events: [AppendedEvent], now: Int64) async throws -> Int {
        let organizations = Array(Set(events.map(\.organizationID)))
        guard !organizations.isEmpty else { return 0 }
        var list: SQLQueryString = ""
        for (index, organizationID) in organizations.enumerated() {
            list = index == 0 ? "\(bind: organizationID)" : "\(list), \(bind: organizationID)"
        }
        let hooks = try await database.raw(
            "SELECT \(unsafeRaw: WebhookRecord.columns) FROM webhooks WHERE enabled = 1 AND org_id IN (\(list)) ORDER BY created_at"
        ).all().map(WebhookRecord.init(row:))
        guard !hooks.isEmpty else { return 0 }
        var rows: [SQLQueryString] = []
        for event in events {
            for hook in hooks where hook.organizationID == event.organizationID && hook.receives(event.eventType) {
                rows.append(
                    """
                    (\(bind: newIdentifier("dlv_")), \(bind: hook.webhookID), \(bind: event.organizationID), \(bind: event.eventID),
                     \(bind: event.organizationSequence), 'pending', 0, 0, '', \(bind: now), \(bind: now))
                    """)
            }
        }
        for start in stride(from: 0, to: rows.count, by: 100) {
            try await database.raw(
                """
                INSERT INTO webhook_deliveries (delivery_id, webhook_id, org_id, event_id, org_sequence, state, attempts,
                                                last_status, last_error, created_at, next_attempt_at)
                VALUES \(rows[start..<min(start + 100, rows.count)].joined(separator: ", "))
                """
            ).run()
        }
        return rows.count
    }

    /// A delivery due now, with what sending it needs.
    struct DueDelivery: Sendable {
        let delivery: DeliveryRecord
        let webhook: WebhookRecord
        let event: AuditEventRecord
    }

    /// The first pending delivery of each endpoint, where it is due by `now` (at most `limit`).
    func due(now: Int64, limit: Int) async throws -> [DueDelivery] {
        try await database.read { database in
            let heads = try await database.raw(
                """
                SELECT \(unsafeRaw: qualified(DeliveryRecord.columns, table: "d")) FROM webhook_deliveries d
                WHERE d.seq IN (SELECT MIN(p.seq) FROM webhook_deliveries p WHERE p.state = 'pending' GROUP BY p.webhook_id)
                  AND d.next_attempt_at <= \(bind: now)
                ORDER BY d.next_attempt_at LIMIT \(unsafeRaw: String(limit))
                """
            ).all().map(DeliveryRecord.init(row:))
            var due: [DueDelivery] = []
            for head in heads {
                guard
                    let webhook = try await Self.webhook(
                        database, organizationID: head.organizationID, id: head.webhookID),
                    let event = try await database.raw(
                        "SELECT \(unsafeRaw: AuditEventRecord.columns) FROM events WHERE event_id = \(bind: head.eventID)"
                    ).first().map(AuditEventRecord.init(row:))
                else { continue }
                due.append(DueDelivery(delivery: head, webhook: webhook, event: event))
            }
            return due
        }
    }

    /// What an attempt came to.
    enum Outcome: Sendable {
        case delivered(status: Int)
        /// Failed; tried again at `retryAt`, or given up when nil.
        case failed(status: Int, error: String, retryAt: Int64?)
    }

    func record(_ outcome: Outcome, of delivery: DeliveryRecord, now: Int64) async throws {
        try await database.transaction { database in
            switch outcome {
            case .delivered(let status):
                try await database.raw(
                    """
                    UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, last_status = \(bind: status),
                           last_error = '', finished_at = \(bind: now)
                    WHERE delivery_id = \(bind: delivery.deliveryID) AND state = 'pending'
                    """
                ).run()
            case .failed(let status, let error, let retryAt?):
                try await database.raw(
                    """
                    UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = \(bind: status), last_error = \(bind: error),
                           next_attempt_at = \(bind: retryAt)
                    WHERE delivery_id = \(bind: delivery.deliveryID) AND state = 'pending'
                    """
                ).run()
            case .failed(let status, let error, nil):
                try await database.raw(
                    """
                    UPDATE webhook_deliveries SET state = 'failed', attempts = attempts + 1, last_status = \(bind: status),
                           last_error = \(bind: error), finished_at = \(bind: now)
                    WHERE delivery_id = \(bind: delivery.deliveryID) AND state = 'pending'
                    """
                ).run()
            }
        }
    }

    /// An endpoint's deliveries, newest first, in `state` when given.
    func deliveries(
        organizationID: String, webhookID: String, state: DeliveryRecord.State?, paging: ListPaging
    ) async throws -> (deliveries: [DeliveryRecord], nextPageToken: String)? {
        try await database.read { database in
            guard try await Self.webhook(database, organizationID: organizationID, id: webhookID) != nil else {
                return nil
            }
            var condition: SQLQueryString = "webhook_id = \(bind: webhookID)"
            if let state { condition = "\(condition) AND state = \(bind: state.rawValue)" }
            if let keyset = paging.keysetCondition(idColumn: "delivery_id") { condition = "\(condition) AND \(keyset)" }
            let rows = try await database.raw(
                """
                SELECT \(unsafeRaw: DeliveryRecord.columns) FROM webhook_deliveries WHERE \(condition)
                \(paging.orderAndLimit(idColumn: "delivery_id"))
                """
            ).all().map(DeliveryRecord.init(row:))
            let (page, next) = paging.page(rows) { (.integer($0.sequence), $0.deliveryID) }
            return (page, next)
        }
    }

    /// Queues the organization's event for the endpoint again; nil when either does not exist.
    func redeliver(
        organizationID: String, webhookID: String, eventID: String, now: Int64
    ) async throws
        -> DeliveryRecord?
    {
        try await database.transaction(serializing: ["webhooks:" + organizationID]) { database in
            guard try await Self.webhook(database, organizationID: organizationID, id: webhookID) != nil,
                let event = try await database.raw(
                    """
                    SELECT org_sequence FROM events WHERE event_id = \(bind: eventID) AND org_id = \(bind: organizationID)
                    """
                ).first()
            else { return nil }
            let id = newIdentifier("dlv_")
            try await database.raw(
                """
                INSERT INTO webhook_deliveries (delivery_id, webhook_id, org_id, event_id, org_sequence, state, attempts,
                                                last_status, last_error, created_at, next_attempt_at)
                VALUES (\(bind: id), \(bind: webhookID), \(bind: organizationID), \(bind: eventID),
                        \(bind: try event.decode(column: "org_sequence", as: Int64.self)), 'pending', 0, 0, '', \(bind: now), \(bind: now))
                """
            ).run()
            return try await database.raw(
                "SELECT \(unsafeRaw: DeliveryRecord.columns) FROM webhook_deliveries WHERE delivery_id = \(bind: id)"
            ).first().map(DeliveryRecord.init(row:))
        }
    }
}
