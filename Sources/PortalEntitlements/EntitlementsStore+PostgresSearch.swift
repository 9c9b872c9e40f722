import Foundation
import PortalStorage
import SQLKit
import Synchronization

/// Activation search on PostgreSQL: the same plan as SQLite's trigram planner, over pg_trgm.
///
/// Handed a whole `LIKE '%…%'` pattern, pg_trgm's GIN index reads the posting list of every trigram
/// in it, common ones included (`sn-`, `000` in a serial: hundreds of thousands of rows). Here the
/// index is asked only for the search's rarest trigrams — each as `search_doc LIKE '%abc%'`, which
/// pg_trgm answers from that trigram's list alone — and the whole pattern is checked on the candidate
/// rows, written `(search_doc || '')` so the planner cannot hand it to the index. Which trigrams are
/// rare comes from PostgreSQL's own statistics of the trigrams (`activations_trigrams`, kept by
/// ANALYZE). A search whose trigrams are all common is counted from its rarest one, and remembered
/// once it reaches the count's cap: activations are never removed, so it stays at the cap.
extension EntitlementsStore {
    /// The search document as a row check only (an expression no index covers).
    static let checkedSearchDocument = "(search_doc || '')"

    /// A page of a search (3+ letters or digits in a row) on PostgreSQL, or nil when the search holds
    /// no trigram pg_trgm indexes (the planner then decides alone).
    static func postgresSearch(
        _ database: any SQLDatabase, _ filter: ActivationFilter, paging: ListPaging, counting: Bool,
        limits: SearchLimits, statistics: TrigramStatistics, denseSearches: DenseSearches
    ) async throws -> (rows: [any SQLRow], total: Int64)? {
        let trigrams = filter.indexedTrigrams
        guard !trigrams.isEmpty else { return nil }
        let estimates = try await statistics.estimates(database)
        let ordered = trigrams.sorted { estimates[$0, default: 0] < estimates[$1, default: 0] }
        let rare = ordered.prefix(3).filter { estimates[$0, default: 0] < Double(limits.rareTrigram) }
        // Only rare trigrams narrow the candidates; a common one adds its whole list to read.
        var driven = filter.condition(searchingWith: checkedSearchDocument)
        for trigram in rare.isEmpty ? [ordered[0]] : rare {
            driven = "\(driven) AND search_doc LIKE \(bind: "%" + trigram + "%")"
        }
        var total: Int64 = 0
        if counting {
            if denseSearches.contains(filter) {
                total = Int64(limits.countCap)
            } else {
                total =
                    try await database.raw(
                        """
                        SELECT COUNT(*) AS n FROM (SELECT 1 FROM activations WHERE \(driven) LIMIT \(unsafeRaw: String(limits.countCap))) AS capped
                        """
                    ).first()?.decode(column: "n", as: Int64.self) ?? 0
                if total >= limits.countCap { denseSearches.remember(filter) }
            }
        }
        // Dense matches (at the cap, or every trigram common): walking the sort order finds a page at
        // once. Otherwise the page comes from the candidates.
        let dense = counting ? total >= limits.countCap : rare.isEmpty
        var condition = dense ? filter.condition(searchingWith: checkedSearchDocument) : driven
        if let keyset = paging.keysetCondition(idColumn: "id") { condition = "\(condition) AND \(keyset)" }
        let rows = try await database.raw(
            """
            SELECT \(unsafeRaw: ActivationRecord.qualifiedColumns), \(paging.sortKeyColumn) FROM activations
            WHERE \(condition) \(paging.orderAndLimit(idColumn: "id"))
            """
        ).all()
        return (rows, total)
    }
}

extension EntitlementsStore.ActivationFilter {
    /// The trigrams pg_trgm indexes that every match holds: each three letters or digits (ASCII) in a
    /// row of the lowercased search text, distinct, at most `maxTerms`.
    var indexedTrigrams: [String] {
        var trigrams: [String] = []
        var run: [UInt8] = []
        func take() {
            guard run.count >= 3 else { return }
            for start in 0...(run.count - 3) where trigrams.count < Self.maxTerms {
                let trigram = String(decoding: run[start..<start + 3], as: UTF8.self)
                if !trigrams.contains(trigram) { trigrams.append(trigram) }
            }
        }
        for byte in searchText.lowercased().utf8 {
            if (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x7a) {
                run.append(byte)
            } else {
                take()
                run.removeAll(keepingCapacity: true)
            }
        }
        take()
        return trigrams
    }
}

/// How many activations hold each common trigram, estimated from PostgreSQL's statistics of the
/// activations' trigrams (the most common ones with their frequencies, times the table's rows);
/// trigrams it does not list are rarer than the least common it does. Read again after a minute.
final class TrigramStatistics: Sendable {
    private struct Snapshot {
        let estimates: [String: Double]
        let readAt: ContinuousClock.Instant
    }

    private let snapshot = Mutex<Snapshot?>(nil)
    private let lifetime: Duration

    init(lifetime: Duration = .seconds(60)) {
        self.lifetime = lifetime
    }

    /// Estimated rows per listed trigram (empty before the table was first analyzed).
    func estimates(_ database: any SQLDatabase) async throws -> [String: Double] {
        let now = ContinuousClock.now
        if let current = snapshot.withLock({ $0 }), now - current.readAt < lifetime { return current.estimates }
        let row = try await database.raw(
            """
            SELECT e.most_common_elems::text::text[] AS trigrams, e.most_common_elem_freqs::float8[] AS frequencies,
                   c.reltuples::float8 AS table_rows
            FROM pg_stats_ext_exprs e JOIN pg_class c ON c.oid = 'activations'::regclass
            WHERE e.statistics_name = 'activations_trigrams' AND e.statistics_schemaname = current_schema()
            """
        ).first()
        var estimates: [String: Double] = [:]
        if let row, !(try row.decodeNil(column: "trigrams")) {
            let trigrams = try row.decode(column: "trigrams", as: [String].self)
            let frequencies = try row.decode(column: "frequencies", as: [Double].self)
            let rows = max(0, try row.decode(column: "table_rows", as: Double.self))
            // The frequencies list one per trigram, then the minimum, maximum and null frequencies.
            for (trigram, frequency) in zip(trigrams, frequencies) { estimates[trigram] = frequency * rows }
        }
        snapshot.withLock { $0 = Snapshot(estimates: estimates, readAt: now) }
        return estimates
    }
}

/// Searches known to match at least the count's cap: activations are only ever added, so a search
/// (with its filters) that reached the cap stays there and need not be counted again.
final class DenseSearches: Sendable {
    private struct Key: Hashable {
        let organizationID: String
        let start: Int64?
        let end: Int64?
        let productIDs: [String]
        let searchText: String
    }

    private let keys = Mutex<Set<Key>>([])
    private let capacity: Int

    init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    private static func key(_ filter: EntitlementsStore.ActivationFilter) -> Key {
        Key(
            organizationID: filter.organizationID, start: filter.start, end: filter.end,
            productIDs: Set(filter.productIDs).sorted(), searchText: filter.searchText.lowercased())
    }

    /// Whether `filter` is known to match at least the cap.
    func contains(_ filter: EntitlementsStore.ActivationFilter) -> Bool {
        keys.withLock { $0.contains(Self.key(filter)) }
    }

    /// Records that `filter` matched at least the cap.
    func remember(_ filter: EntitlementsStore.ActivationFilter) {
        keys.withLock { keys in
            if keys.count >= capacity { keys.removeAll(keepingCapacity: true) }
            keys.insert(Self.key(filter))
        }
    }
}
