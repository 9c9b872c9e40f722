import Foundation
import PortalAPI
import PortalRPC
import PortalStorage
import SQLKit

/// The audit log: append-only events per organization, each chained to its predecessor by hash.
final class AuditStore: Sendable {
    let database: ServiceDatabase
    /// This instance's appends in flight per organization (PostgreSQL).
    let pipeline = ChainPipeline()

    init(database: ServiceDatabase) {
        self.database = database
    }

    /// An event checked and ready to append.
    struct Incoming: Sendable {
        let eventID: String
        let organizationID: String
        let time: Int64
        let eventType: String
        let action: String
        let message: String
        let user: String
        let actorMemberID: String
        let subjectKind: String
        let subjectID: String
    }

    /// Matches counted exactly for filters the counters cannot answer; beyond it `total_size` is this cap.
    static let countCap = 10_000

    /// `total_size` for a filter: exact from the counters for organization, type and user filters;
    /// counted (up to `countCap`) for time windows, actors and searches.
    private static func totalSize(_ database: any SQLDatabase, _ filter: Filter) async throws -> Int64 {
        let backend = SQLBackend(database)
        if filter.timeStart == nil, filter.timeEnd == nil, filter.actorMemberID.isEmpty,
            Filter.ftsQuery(filter.searchText) == nil
        {
            let keys: [(String, String)]
            switch (filter.eventTypes.isEmpty, filter.userNames) {
            case (true, nil): keys = [("all", "")]
            case (false, nil): keys = Set(filter.eventTypes).map { ("type", $0) }
            case (true, let names?): keys = names.map { ("user", $0) }
            case (false, let names?):
                keys = Set(filter.eventTypes).flatMap { type in names.map { ("type_user", type + "|" + $0) } }
            }
            var total: Int64 = 0
            for (dimension, value) in keys {
                total +=
                    try await database.raw(
                        """
                        SELECT n FROM event_counts WHERE org_id = \(bind: filter.organizationID) AND dimension = \(bind: dimension) AND value = \(bind: value)
                        """
                    ).first()?.decode(column: "n", as: Int64.self) ?? 0
            }
            return total
        }
        if backend == .sqlite, let match = filter.ftsMatch, filter.timeStart == nil, filter.timeEnd == nil,
            filter.actorMemberID.isEmpty,
            filter.eventTypes.isEmpty, filter.userNames == nil
        {
            return try await searchMatches(database, match)
        }
        return try await database.raw(
            """
            SELECT COUNT(*) AS n FROM (SELECT 1 FROM events WHERE \(filter.condition(backend)) LIMIT \(unsafeRaw: String(countCap))) AS capped
            """
        ).first()?.decode(column: "n", as: Int64.self) ?? 0
    }

    /// How many events of the organization a search matches, up to `countCap`, from the FTS5 index alone (SQLite).
    private static func searchMatches(_ database: any SQLDatabase, _ match: String) async throws -> Int64 {
        try await database.raw(
            """
            SELECT COUNT(*) AS n FROM (SELECT rowid FROM events_fts WHERE events_fts MATCH \(bind: match) LIMIT \(unsafeRaw: String(countCap))) AS capped
            """
        ).first()?.decode(column: "n", as: Int64.self) ?? 0
    }

    /// The rows of one page in order. On SQLite a selective search (fewer than `countCap` matches) is
    /// driven by the full-text index and sorted; anything else walks the time index and stops at the
    /// page's end, checking each row against the index when searching. PostgreSQL's planner chooses
    /// between its GIN index and the time index itself.
    private static func pageRows(
        _ database: any SQLDatabase, _ filter: Filter, paging: ListPaging, columns: String
    ) async throws -> [any SQLRow] {
        // Past the first page the keyset bound is the tighter one; leaving the window's bound on the
        // same side lets SQLite seek by the looser one and rescan everything before the page.
        var filter = filter
        if let after = paging.after, case .integer(let position) = after.value {
            if !paging.descending, let start = filter.timeStart, position >= start { filter.timeStart = nil }
            if paging.descending, let end = filter.timeEnd, position < end { filter.timeEnd = nil }
        }
        let backend = SQLBackend(database)
        var condition = filter.condition(backend)
        if let keyset = paging.keysetCondition(idColumn: "event_id") { condition = "\(condition) AND \(keyset)" }
        if backend == .sqlite, let match = filter.ftsMatch, try await searchMatches(database, match) < countCap {
            return try await database.raw(
                """
                SELECT \(unsafeRaw: columns) FROM (SELECT rowid AS match_seq FROM events_fts WHERE events_fts MATCH \(bind: match)) AS matches
                CROSS JOIN events ON events.seq = matches.match_seq
                WHERE \(condition) \(paging.orderAndLimit(idColumn: "event_id"))
                """
            ).all()
        }
        return try await database.raw(
            """
            SELECT \(unsafeRaw: columns) FROM events WHERE \(condition) \(paging.orderAndLimit(idColumn: "event_id"))
            """
        ).all()
    }

    /// The filter with its user resolved to the stored names it matches ignoring case. An
    /// organization's distinct user names are few (its members and "system") and already counted, so
    /// the index on the exact name still serves the query.
    private static func resolvingUser(_ database: any SQLDatabase, _ filter: Filter) async throws -> Filter {
        guard !filter.user.isEmpty else { return filter }
        var filter = filter
        let wanted = filter.user.lowercased()
        filter.userNames = try await database.raw(
            """
            SELECT value FROM event_counts WHERE org_id = \(bind: filter.organizationID) AND dimension = 'user'
            """
        ).all().map { try $0.decode(column: "value", as: String.self) }.filter { $0.lowercased() == wanted }
        return filter
    }

    /// What a list or export selects.
    struct Filter: Sendable {
        var organizationID: String
        var timeStart: Int64?
        var timeEnd: Int64?
        var eventTypes: [String] = []
        var actorMemberID = ""
        /// The user filter as given; `userNames` holds the stored names it matches.
        var user = ""
        /// The organization's user names equal to `user` ignoring case (Unicode), or nil without a user filter.
        var userNames: [String]?
        var searchText = ""

        /// The `WHERE` condition; text search goes through the full-text index (FTS5, or PostgreSQL's GIN).
        func condition(_ backend: SQLBackend) -> SQLQueryString {
            var condition: SQLQueryString = "org_id = \(bind: organizationID)"
            if let timeStart { condition = "\(condition) AND time >= \(bind: timeStart)" }
            if let timeEnd { condition = "\(condition) AND time < \(bind: timeEnd)" }
            if !eventTypes.isEmpty {
                var list: SQLQueryString = ""
                for (index, type) in eventTypes.enumerated() {
                    list = index == 0 ? "\(bind: type)" : "\(list), \(bind: type)"
                }
                condition = "\(condition) AND event_type IN (\(list))"
            }
            if !actorMemberID.isEmpty { condition = "\(condition) AND actor_member_id = \(bind: actorMemberID)" }
            if let userNames {
                guard !userNames.isEmpty else { return "\(condition) AND FALSE" }
                var list: SQLQueryString = ""
                for (index, name) in userNames.enumerated() {
                    list = index == 0 ? "\(bind: name)" : "\(list), \(bind: name)"
                }
                condition = "\(condition) AND user_name IN (\(list))"
            }
            if backend == .postgres {
                guard ftsMatch != nil else { return condition }
                // Words of punctuation alone hold no letters or digits to look for: nothing matches.
                guard let phrases = Self.phrases(searchText) else { return "\(condition) AND FALSE" }
                var query: SQLQueryString = ""
                for (index, phrase) in phrases.enumerated() {
                    let term: SQLQueryString = "phraseto_tsquery('simple', \(bind: phrase))"
                    query = index == 0 ? term : "\(query) && \(term)"
                }
                condition = "\(condition) AND search_words @@ (\(query))"
            } else if ftsMatch != nil {
                // The row is the organization's already, so the check needs only the words.
                condition =
                    "\(condition) AND EXISTS (SELECT 1 FROM events_fts WHERE events_fts MATCH \(bind: Self.ftsQuery(searchText)!) AND events_fts.rowid = events.seq)"
            }
            return condition
        }

        /// The search's words for PostgreSQL, each as the phrase of letter-and-digit runs FTS5 would
        /// see in it (`ada@example.com` → `ada example com`), all required.
        static func phrases(_ text: String) -> [String]? {
            let words = searchWords(text).map { word in
                word.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).joined(separator: " ")
            }.filter { !$0.isEmpty }
            return words.isEmpty ? nil : words
        }

        /// The search split into words as `ftsQuery` reads them.
        private static func searchWords(_ text: String) -> [Substring] {
            text.split(whereSeparator: {
                !$0.isLetter && !$0.isNumber && $0 != "@" && $0 != "." && $0 != "_" && $0 != "-"
            })
        }

        /// The full-text query, scoped to the organization: `org : "o6f72…" AND "activated" "licenses"`.
        var ftsMatch: String? {
            guard let terms = Self.ftsQuery(searchText) else { return nil }
            let organizationToken =
                "o"
                + organizationID.utf8.map {
                    String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16)
                }.joined()
            return "org : \"\(organizationToken)\" AND \(terms)"
        }

        /// Every word of the search as a quoted term, all required: `"activated" "licenses"`.
        ///
        /// Whole words (case-insensitive): a prefix query makes FTS5 load a word's whole posting list,
        /// which costs tens of milliseconds on a large log, while word lookups stream and stop early.
        static func ftsQuery(_ text: String) -> String? {
            let words = searchWords(text)
            guard !words.isEmpty else { return nil }
            return words.map { ftsString(String($0)) }.joined(separator: " ")
        }
    }

    /// Sortable columns of the event list.
    static let columns = [SortColumn("time", isText: false)]

    /// A page of events and the number matching.
    func list(
        _ filter: Filter, paging: ListPaging, counting: Bool = true
    ) async throws -> (events: [AuditEventRecord], nextPageToken: String, totalSize: Int64) {
        try await database.read { database in
            let filter = try await Self.resolvingUser(database, filter)
            let total = counting ? try await Self.totalSize(database, filter) : 0
            let rows = try await Self.pageRows(
                database, filter, paging: paging, columns: AuditEventRecord.qualifiedColumns
            )
            .map(AuditEventRecord.init(row:))
            let (page, next) = paging.page(rows) { (.integer($0.time), $0.eventID) }
            return (page, next, total)
        }
    }

    /// One exported row: only the columns the CSV shows, plus the keyset id.
    struct ExportRow: Sendable {
        /// The columns it reads.
        static let columns = "events.event_id, events.time, events.event_type, events.message, events.user_name"

        let eventID: String
        let time: Int64
        let eventType: String
        let message: String
        let user: String

        /// Reads the row's columns directly where the engine allows (exports read a million rows).
        init(row: any SQLRow) throws {
            let reader = SQLRowReader(row)
            eventID = try reader.string("event_id")
            time = try reader.integer("time")
            eventType = try reader.string("event_type")
            message = try reader.string("message")
            user = try reader.string("user_name")
        }
    }

    /// Every event `filter` selects, in `paging`'s order, handed to `each` in batches of `paging`'s
    /// size: on PostgreSQL one statement whose rows arrive as they are consumed, on SQLite keyset pages
    /// (`following` makes the paging for the token after each).
    func export(
        _ filter: Filter, paging: ListPaging, following: (String) throws -> ListPaging,
        each: @escaping @Sendable ([ExportRow]) async throws -> Void
    ) async throws {
        if database.backend == .postgres {
            let filter = try await database.read { database in try await Self.resolvingUser(database, filter) }
            try await database.stream(
                """
                SELECT \(unsafeRaw: ExportRow.columns) FROM events
                WHERE \(filter.condition(.postgres)) \(paging.order(idColumn: "event_id"))
                """, batchSize: paging.pageSize
            ) { rows in
                try await each(try rows.map(ExportRow.init(row:)))
            }
            return
        }
        var paging = paging
        while true {
            let page = try await exportPage(filter, paging: paging)
            try await each(page.rows)
            guard !page.nextPageToken.isEmpty else { return }
            paging = try following(page.nextPageToken)
        }
    }

    /// A step of an export: the next rows in order, without counting.
    func exportPage(_ filter: Filter, paging: ListPaging) async throws -> (rows: [ExportRow], nextPageToken: String) {
        try await database.read { database in
            let filter = try await Self.resolvingUser(database, filter)
            let rows = try await Self.pageRows(
                database, filter, paging: paging, columns: ExportRow.columns
            ).map(ExportRow.init(row:))
            return paging.page(rows) { (.integer($0.time), $0.eventID) }
        }
    }

    /// The organization's `limit` most recent events, newest first.
    func recent(organizationID: String, limit: Int) async throws -> [AuditEventRecord] {
        try await database.read { database in
            try await database.raw(
                """
                SELECT \(unsafeRaw: AuditEventRecord.columns) FROM events WHERE org_id = \(bind: organizationID)
                ORDER BY time DESC, event_id DESC LIMIT \(unsafeRaw: String(limit))
                """
            ).all().map(AuditEventRecord.init(row:))
        }
    }

    /// Walks an organization's chain in order and reports the first event whose links do not hold.
    func verifyChain(organizationID: String) async throws -> (checked: Int64, brokenEventID: String?, reason: String?) {
        var previous = [UInt8](repeating: 0, count: 32)
        var expectedSequence: Int64 = 1
        var checked: Int64 = 0
        while true {
            let from = expectedSequence
            let batch = try await database.read { database in
                try await database.raw(
                    """
                    SELECT \(unsafeRaw: AuditEventRecord.columns) FROM events
                    WHERE org_id = \(bind: organizationID) AND org_sequence >= \(bind: from)
                    ORDER BY org_sequence LIMIT 1000
                    """
                ).all().map(AuditEventRecord.init(row:))
            }
            if batch.isEmpty { break }
            for event in batch {
                if event.organizationSequence != expectedSequence {
                    return (checked, event.eventID, "event \(expectedSequence) of the chain is missing")
                }
                if event.previousHash != previous {
                    return (
                        checked, event.eventID, "previous_hash does not match the hash of event \(expectedSequence - 1)"
                    )
                }
                if event.hash != event.expectedHash {
                    return (
                        checked, event.eventID, "the stored fields do not match the event's hash (the row was altered)"
                    )
                }
                previous = event.hash
                expectedSequence += 1
                checked += 1
            }
        }
        let head = try await database.read { database in
            try await database.raw(
                "SELECT last_sequence, last_hash FROM chain_heads WHERE org_id = \(bind: organizationID)"
            ).first()
        }
        if let head, try head.decode(column: "last_sequence", as: Int64.self) != checked {
            return (
                checked, nil,
                "the chain head records \(try head.decode(column: "last_sequence", as: Int64.self)) events but \(checked) were found"
            )
        }
        return (checked, nil, nil)
    }
}
