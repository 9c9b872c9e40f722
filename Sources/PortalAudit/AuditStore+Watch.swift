import PortalStorage
import SQLKit

extension AuditStore {
    /// The sequence of the organization's last event; 0 before its first.
    func lastSequence(organizationID: String) async throws -> Int64 {
        try await database.read { database in
            try await database.raw(
                "SELECT last_sequence FROM chain_heads WHERE org_id = \(bind: organizationID)"
            ).first()?.decode(column: "last_sequence", as: Int64.self) ?? 0
        }
    }

    /// Up to `limit` of the organization's events after `sequence`, in the order they were recorded.
    /// An organization's events commit in sequence order (appends take turns on its chain), so what
    /// a read returns never leaves a gap a later read could fill.
    func events(organizationID: String, after sequence: Int64, limit: Int) async throws -> [AuditEventRecord] {
        try await database.read { database in
            try await database.raw(
                """
                SELECT \(unsafeRaw: AuditEventRecord.columns) FROM events
                WHERE org_id = \(bind: organizationID) AND org_sequence > \(bind: sequence)
                ORDER BY org_sequence LIMIT \(unsafeRaw: String(limit))
                """
            ).all().map(AuditEventRecord.init(row:))
        }
    }
}
