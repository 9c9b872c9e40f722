import SQLKit

extension SQLDatabase {
    /// Inside a transaction on PostgreSQL: takes `keys` — the keys `ServiceDatabase.transaction(serializing:)`
    /// takes turns on — until the transaction ends, if no other transaction holds any of them, without
    /// waiting. False when one is held elsewhere (the transaction should then roll back and start
    /// over). Always true on SQLite, where a transaction runs alone.
    public func tryHolding(_ keys: [String]) async throws -> Bool {
        guard SQLBackend(self) == .postgres, !keys.isEmpty else { return true }
        let sorted = Set(keys).sorted()  // the order `transaction(serializing:)` takes them in
        let row = try await raw(
            """
            SELECT bool_and(pg_try_advisory_xact_lock(hashtext(key))) AS held
            FROM (SELECT unnest(\(bind: sorted)::text[]) AS key ORDER BY 1) AS keys
            """
        ).first()
        return try row?.decode(column: "held", as: Bool.self) ?? false
    }
}
