import PortalAPI
import PortalRPC
import PortalStorage
import SQLKit
import Synchronization

extension EntitlementsStore {
    // MARK: Products

    /// Sortable columns of the products list (of the per-product totals below).
    static let productColumns = [
        SortColumn("product_name", expression: "lower(name)", isText: true),
        SortColumn("product_id", expression: "id", isText: true),
        SortColumn("license_type", expression: "lower(license_type)", isText: true),
        SortColumn("product_description", expression: "lower(description)", isText: true),
        SortColumn("deployment_type", expression: "lower(deployment_type)", isText: true),
        SortColumn("available_licenses", expression: "available", isText: false),
        SortColumn("activated_licenses", expression: "activated", isText: false),
        SortColumn("unactivated_licenses", expression: "unactivated", isText: false),
    ]

    /// The products the organization holds, one row per product with its totals (a derived table).
    private static func heldProducts(_ organizationID: String) -> SQLQueryString {
        """
        (SELECT p.id, p.name, p.license_type, p.description, p.deployment_type,
                t.available, t.activated, t.available - t.activated AS unactivated
         FROM product_totals t JOIN products p ON p.id = t.product_id
         WHERE t.org_id = \(bind: organizationID)) AS held
        """
    }

    /// A page of held products (search over name and license type) and how many match.
    func listProducts(
        organizationID: String, paging: ListPaging, searchText: String
    )
        async throws -> (products: [HeldProduct], nextPageToken: String, totalSize: Int64)
    {
        try await database.read { database in
            var condition: SQLQueryString = "1 = 1"
            if !searchText.isEmpty {
                let pattern = containsPattern(searchText)
                condition =
                    "(lower(name) LIKE \(bind: pattern) ESCAPE '\\' OR lower(license_type) LIKE \(bind: pattern) ESCAPE '\\')"
            }
            let total =
                try await database.raw(
                    "SELECT COUNT(*) AS n FROM \(Self.heldProducts(organizationID)) WHERE \(condition)"
                ).first()?
                .decode(column: "n", as: Int64.self) ?? 0
            if let keyset = paging.keysetCondition(idColumn: "id") { condition = "\(condition) AND \(keyset)" }
            let rows = try await database.raw(
                """
                SELECT *, \(paging.sortKeyColumn) FROM \(Self.heldProducts(organizationID)) WHERE \(condition) \(paging.orderAndLimit(idColumn: "id"))
                """
            ).all()
            let (pageRows, next) = try paging.page(rows, idColumn: "id")
            let page = try pageRows.map(HeldProduct.init(row:))
            return (page, next, total)
        }
    }

    /// One held product and every entitlement of the organization that includes it.
    func product(
        organizationID: String, productID: String
    ) async throws -> (HeldProduct, [(EntitlementRecord, EntitlementLineRecord)]) {
        try await database.read { database in
            guard
                let row = try await database.raw(
                    "SELECT * FROM \(Self.heldProducts(organizationID)) WHERE id = \(bind: productID)"
                ).first()
            else {
                throw EntitlementsError.productNotHeld(productID: productID)
            }
            let ids = try await database.raw(
                """
                SELECT e.id FROM entitlements e JOIN entitlement_lines l ON l.entitlement_id = e.id
                WHERE e.org_id = \(bind: organizationID) AND l.product_id = \(bind: productID) ORDER BY e.order_date DESC, e.id
                """
            ).all().map { try $0.decode(column: "id", as: String.self) }
            let entitlements = try await Self.entitlements(database, ids: ids, organizationID: organizationID)
                .compactMap { entitlement in
                    entitlement.lines.first { $0.productID == productID }.map { (entitlement, $0) }
                }
            return (try HeldProduct(row: row), entitlements)
        }
    }

    // MARK: Entitlements

    /// Sortable columns of the entitlements list.
    static let entitlementColumns = [
        SortColumn("entitlement_id", expression: "id", isText: true),
        SortColumn("sales_order", expression: "lower(sales_order)", isText: true),
        SortColumn("status", expression: "status", isText: true),
        SortColumn("product_name", expression: "lower(first_product_name)", isText: true),
        SortColumn("product_description", expression: "lower(first_product_description)", isText: true),
        SortColumn("order_date", isText: false),
        SortColumn("expiration_date", expression: "expiration_key", isText: false),
        SortColumn("po_number", expression: "lower(po_number)", isText: true),
        SortColumn("total_available_licenses", expression: "total_available", isText: false),
    ]

    /// The organization's entitlements with the sortable derived columns.
    private static func listedEntitlements(_ organizationID: String, now: Int64) -> SQLQueryString {
        """
        (SELECT e.id, e.sales_order, e.po_number, e.order_date, e.expiration_date, e.first_product_name,
                e.first_product_description, e.total_available,
                COALESCE(e.expiration_date, 9223372036854775807) AS expiration_key,
                CASE WHEN e.expiration_date IS NOT NULL AND e.expiration_date <= \(bind: now) THEN 'EXPIRED' ELSE 'ACTIVE' END AS status
         FROM entitlements e WHERE e.org_id = \(bind: organizationID)) AS listed
        """
    }

    /// What an entitlements list selects.
    struct EntitlementFilter: Sendable {
        var orderDateStart: Int64?
        var orderDateEnd: Int64?
        var expirationStart: Int64?
        var expirationEnd: Int64?
        var searchField: Portal_Entitlements_V1_EntitlementSearchField = .unspecified
        var searchText = ""

        var condition: SQLQueryString {
            var condition: SQLQueryString = "1 = 1"
            if let orderDateStart { condition = "\(condition) AND order_date >= \(bind: orderDateStart)" }
            if let orderDateEnd { condition = "\(condition) AND order_date < \(bind: orderDateEnd)" }
            // A perpetual entitlement never matches an expiration range.
            if expirationStart != nil || expirationEnd != nil {
                condition = "\(condition) AND expiration_date IS NOT NULL"
            }
            if let expirationStart { condition = "\(condition) AND expiration_key >= \(bind: expirationStart)" }
            if let expirationEnd { condition = "\(condition) AND expiration_key < \(bind: expirationEnd)" }
            if !searchText.isEmpty {
                let pattern = containsPattern(searchText)
                let columns: [String] =
                    switch searchField {
                    case .entitlementID: ["id"]
                    case .salesOrder: ["sales_order"]
                    case .poNumber: ["po_number"]
                    default: ["id", "sales_order", "po_number"]
                    }
                var any: SQLQueryString = ""
                for (index, column) in columns.enumerated() {
                    any =
                        "\(any)\(unsafeRaw: index == 0 ? "" : " OR ")lower(\(unsafeRaw: column)) LIKE \(bind: pattern) ESCAPE '\\'"
                }
                condition = "\(condition) AND (\(any))"
            }
            return condition
        }
    }

    /// A page of entitlements with their lines, and how many match.
    func listEntitlements(
        organizationID: String, paging: ListPaging, filter: EntitlementFilter, now: Int64
    )
        async throws -> (entitlements: [EntitlementRecord], nextPageToken: String, totalSize: Int64)
    {
        try await database.read { database in
            let source = Self.listedEntitlements(organizationID, now: now)
            var condition = filter.condition
            let total =
                try await database.raw("SELECT COUNT(*) AS n FROM \(source) WHERE \(condition)").first()?
                .decode(column: "n", as: Int64.self) ?? 0
            if let keyset = paging.keysetCondition(idColumn: "id") { condition = "\(condition) AND \(keyset)" }
            let rows = try await database.raw(
                """
                SELECT id, \(paging.sortKeyColumn) FROM \(source) WHERE \(condition) \(paging.orderAndLimit(idColumn: "id"))
                """
            ).all()
            let (pageRows, next) = try paging.page(rows, idColumn: "id")
            let ids = try pageRows.map { try $0.decode(column: "id", as: String.self) }
            return (try await Self.entitlements(database, ids: ids, organizationID: organizationID), next, total)
        }
    }

    // MARK: Activations

    /// Sortable columns of the activations log.
    static let activationColumns = [
        SortColumn("activation_date", expression: "activated_at", isText: false),
        SortColumn("product_name", expression: "lower(product_name)", isText: true),
        SortColumn("quantity", isText: false),
        SortColumn("project_name", expression: "lower(project_name)", isText: true),
        SortColumn("project_manager", expression: "lower(project_manager)", isText: true),
        SortColumn("activated_by", expression: "lower(activated_by)", isText: true),
        SortColumn("entitlement_id", isText: true),
        SortColumn("serial_number", expression: "lower(serial_number)", isText: true),
    ]

    /// What the activations log selects.
    struct ActivationFilter: Sendable {
        var organizationID: String
        var start: Int64?
        var end: Int64?
        var productIDs: [String] = []
        var searchText = ""

        var condition: SQLQueryString { condition(searchingWith: "search_doc") }

        /// The condition with the search checked against `document` (the column, or an expression of it).
        func condition(searchingWith document: String) -> SQLQueryString {
            var condition: SQLQueryString = "org_id = \(bind: organizationID)"
            if let start { condition = "\(condition) AND activated_at >= \(bind: start)" }
            if let end { condition = "\(condition) AND activated_at < \(bind: end)" }
            if !productIDs.isEmpty {
                var list: SQLQueryString = ""
                for (index, id) in productIDs.enumerated() {
                    list = index == 0 ? "\(bind: id)" : "\(list), \(bind: id)"
                }
                condition = "\(condition) AND product_id IN (\(list))"
            }
            if !searchText.isEmpty {
                condition =
                    "\(condition) AND \(unsafeRaw: document) LIKE \(bind: containsPattern(searchText)) ESCAPE '\\'"
            }
            return condition
        }

        /// The distinct trigrams of the search text (at most `maxTerms`), when it is long enough for
        /// the trigram index (3+ characters); shorter searches are checked row by row.
        var searchTrigrams: [String]? {
            let scalars = Array(searchText.lowercased().unicodeScalars)
            guard scalars.count >= 3 else { return nil }
            var seen = Set<String>()
            var trigrams: [String] = []
            for start in 0...(scalars.count - 3) where trigrams.count < Self.maxTerms {
                var trigram = String.UnicodeScalarView()
                trigram.append(contentsOf: scalars[start..<start + 3])
                if seen.insert(String(trigram)).inserted { trigrams.append(String(trigram)) }
            }
            return trigrams
        }

        /// The most trigrams of one search text looked up in the index.
        static let maxTerms = 12

        /// The search text as an index phrase: rows holding it as a substring.
        var searchPhrase: String { ftsString(searchText) }
    }

    /// `total_size` of the activations log without a search: exact from the counters for
    /// organization and product filters, counted (up to `countCap`) for date windows and short searches.
    private static func activationCount(
        _ database: any SQLDatabase, _ filter: ActivationFilter, limits: SearchLimits
    ) async throws -> Int64 {
        if filter.start == nil, filter.end == nil, filter.searchText.isEmpty {
            var condition: SQLQueryString = "org_id = \(bind: filter.organizationID)"
            if !filter.productIDs.isEmpty {
                var list: SQLQueryString = ""
                for (index, id) in Set(filter.productIDs).enumerated() {
                    list = index == 0 ? "\(bind: id)" : "\(list), \(bind: id)"
                }
                condition = "\(condition) AND product_id IN (\(list))"
            }
            return try await database.raw(
                "SELECT CAST(COALESCE(SUM(activations), 0) AS BIGINT) AS n FROM product_totals WHERE \(condition)"
            ).first()?
            .decode(column: "n", as: Int64.self) ?? 0
        }
        // Counting a date window in date order keeps PostgreSQL on the date index: its row estimate
        // alone picks a table scan, which reads the whole log before the window's rows.
        let order: SQLQueryString = filter.searchText.isEmpty ? "ORDER BY org_id, activated_at" : ""
        return try await database.raw(
            """
            SELECT COUNT(*) AS n FROM (SELECT 1 FROM activations WHERE \(filter.condition) \(order) LIMIT \(unsafeRaw: String(limits.countCap))) AS capped
            """
        ).first()?.decode(column: "n", as: Int64.self) ?? 0
    }

    /// How many rows hold each trigram, counted up to `limits.rareTrigram`.
    private static func trigramCounts(
        _ database: any SQLDatabase, _ trigrams: [String], limits: SearchLimits
    ) async throws -> [String: Int] {
        let counts: [SQLQueryString] = trigrams.map { trigram in
            return """
                SELECT \(bind: trigram) AS trigram, (SELECT COUNT(*) FROM (SELECT rowid FROM activations_search WHERE activations_search MATCH \(bind: ftsString(trigram))
                LIMIT \(unsafeRaw: String(limits.rareTrigram))) AS capped) AS n
                """
        }
        var result: [String: Int] = [:]
        for row in try await database.raw("\(counts.joined(separator: " UNION ALL "))").all() {
            result[try row.decode(column: "trigram", as: String.self)] = try row.decode(column: "n", as: Int.self)
        }
        return result
    }

    /// The index query a search's candidates come from: the rows holding its (up to three) rare
    /// trigrams when it has one (a superset of the matches, checked with LIKE, and fewer than
    /// `limits.rareTrigram` rows), else the rows holding the whole text (perhaps very many).
    private static func candidateMatch(
        _ database: any SQLDatabase, _ filter: ActivationFilter, trigrams: [String], limits: SearchLimits,
        cache: TrigramCountCache
    ) async throws -> (match: String, fewerThanRare: Bool) {
        var counts = cache.counts(of: trigrams)
        let missing = trigrams.filter { counts[$0] == nil }
        if !missing.isEmpty {
            let fresh = try await trigramCounts(database, missing, limits: limits)
            cache.remember(fresh)
            counts.merge(fresh) { _, new in new }
        }
        let rarest = trigrams.sorted { counts[$0, default: 0] < counts[$1, default: 0] }
        guard counts[rarest[0], default: 0] < limits.rareTrigram else { return (filter.searchPhrase, false) }
        // Only rare trigrams narrow the candidates; joining a common one costs more than it saves.
        let match = rarest.prefix(3).filter { counts[$0, default: 0] < limits.rareTrigram }
            .map(ftsString).joined(separator: " AND ")
        return (match, true)
    }

    /// The activations among the index candidates (`match`), for a query's FROM clause.
    private static func candidates(_ match: String) -> SQLQueryString {
        """
        (SELECT rowid AS match_rowid FROM activations_search WHERE activations_search MATCH \(bind: match)) AS matches
        CROSS JOIN activations ON activations.seq = matches.match_rowid
        """
    }

    /// How many activations the organization has (from its per-product totals).
    private static func organizationActivations(
        _ database: any SQLDatabase, _ organizationID: String
    ) async throws -> Int {
        try await database.raw(
            "SELECT CAST(COALESCE(SUM(activations), 0) AS BIGINT) AS n FROM product_totals WHERE org_id = \(bind: organizationID)"
        ).first()?
        .decode(column: "n", as: Int.self) ?? 0
    }

    /// How many rows of `source` meet `condition`, up to `cap`.
    private static func cappedCount(
        _ database: any SQLDatabase, from source: SQLQueryString, where condition: SQLQueryString, cap: Int
    ) async throws -> Int64 {
        try await database.raw(
            """
            SELECT COUNT(*) AS n FROM (SELECT 1 FROM \(source) WHERE \(condition) LIMIT \(unsafeRaw: String(cap))) AS capped
            """
        ).first()?.decode(column: "n", as: Int64.self) ?? 0
    }

    /// A page of activations and, when `counting`, how many match.
    ///
    /// On SQLite a search of 3+ characters takes its candidates from the trigram index (see `candidateMatch`)
    /// and counts its matches among them, up to the cap (when candidates are few, a first page is
    /// counted and sorted in one pass). Below the cap the page is picked from the candidates; at the
    /// cap matches are dense, and walking the sort order checking rows finds a page quickly. When
    /// every trigram is common and the organization is small, its own rows are counted and walked
    /// instead of a phrase's candidates across all organizations. Shorter searches check rows while
    /// walking. PostgreSQL plans a search the same way over pg_trgm (`postgresSearch`).
    func listActivations(
        _ filter: ActivationFilter, paging: ListPaging, counting: Bool = true
    )
        async throws -> (activations: [ActivationRecord], nextPageToken: String, totalSize: Int64)
    {
        let (limits, cache, trigramStatistics, denseSearches) = (
            searchLimits, trigramCounts, trigramStatistics, denseSearches
        )
        return try await database.read { database in
            let keyset = paging.keysetCondition(idColumn: "id")
            var condition = filter.condition
            if let keyset { condition = "\(condition) AND \(keyset)" }
            var source: SQLQueryString = "activations"
            var total: Int64 = 0
            let backend = SQLBackend(database)
            if backend == .postgres, !filter.searchText.isEmpty,
                let search = try await Self.postgresSearch(
                    database, filter, paging: paging, counting: counting, limits: limits,
                    statistics: trigramStatistics, denseSearches: denseSearches)
            {
                let (pageRows, next) = try paging.page(search.rows, idColumn: "id")
                return (try pageRows.map(ActivationRecord.init(row:)), next, search.total)
            }
            if backend == .sqlite, let trigrams = filter.searchTrigrams {
                let (match, fewerThanRare) = try await Self.candidateMatch(
                    database, filter, trigrams: trigrams, limits: limits, cache: cache)
                let candidates = Self.candidates(match)
                if fewerThanRare, keyset == nil {
                    // Few candidates: count and sort every match in one pass.
                    let rows = try await database.raw(
                        """
                        SELECT \(unsafeRaw: ActivationRecord.qualifiedColumns), \(paging.sortKeyColumn), COUNT(*) OVER () AS matched
                        FROM \(candidates) WHERE \(condition) \(paging.orderAndLimit(idColumn: "id"))
                        """
                    ).all()
                    let (pageRows, next) = try paging.page(rows, idColumn: "id")
                    return (
                        try pageRows.map(ActivationRecord.init(row:)), next,
                        try rows.first?.decode(column: "matched", as: Int64.self) ?? 0
                    )
                }
                if try await Self.organizationActivations(database, filter.organizationID) <= limits.ownRowsScan {
                    total = try await Self.cappedCount(
                        database, from: "activations", where: filter.condition, cap: limits.countCap)
                } else {
                    total = try await Self.cappedCount(
                        database, from: candidates, where: filter.condition, cap: limits.countCap)
                    if total < limits.countCap { source = candidates }
                }
            } else if counting {
                total = try await Self.activationCount(database, filter, limits: limits)
            }
            let rows = try await database.raw(
                """
                SELECT \(unsafeRaw: ActivationRecord.qualifiedColumns), \(paging.sortKeyColumn) FROM \(source)
                WHERE \(condition) \(paging.orderAndLimit(idColumn: "id"))
                """
            ).all()
            let (pageRows, next) = try paging.page(rows, idColumn: "id")
            return (try pageRows.map(ActivationRecord.init(row:)), next, total)
        }
    }
}

extension EntitlementsStore {
    /// Every activation `filter` selects, in `paging`'s order, handed to `each` in batches of
    /// `paging`'s size: on PostgreSQL one statement whose rows arrive as they are consumed, on SQLite
    /// keyset pages (`following` makes the paging for the token after each).
    func exportActivations(
        _ filter: ActivationFilter, paging: ListPaging, following: (String) throws -> ListPaging,
        each: @escaping @Sendable ([ExportedActivation]) async throws -> Void
    ) async throws {
        if database.backend == .postgres {
            try await database.stream(
                """
                SELECT \(unsafeRaw: ExportedActivation.columns) FROM activations
                WHERE \(filter.condition) \(paging.order(idColumn: "id"))
                """, batchSize: paging.pageSize
            ) { rows in
                try await each(try rows.map(ExportedActivation.init(row:)))
            }
            return
        }
        var paging = paging
        while true {
            let page = try await listActivations(filter, paging: paging, counting: false)
            try await each(page.activations.map(ExportedActivation.init))
            guard !page.nextPageToken.isEmpty else { return }
            paging = try following(page.nextPageToken)
        }
    }
}

/// A product the organization holds, with its totals over the organization's entitlements.
struct HeldProduct: Sendable {
    let product: ProductRecord
    let available: Int64
    let activated: Int64

    init(row: any SQLRow) throws {
        product = try ProductRecord(row: row)
        available = try row.decode(column: "available", as: Int64.self)
        activated = try row.decode(column: "activated", as: Int64.self)
    }

    var api: Portal_Entitlements_V1_LicensedProduct {
        .with {
            $0.product = product.api
            $0.availableLicenses = available
            $0.activatedLicenses = activated
            $0.unactivatedLicenses = available - activated
        }
    }
}

/// How many activations hold each trigram (capped), remembered for a minute: the counts only choose
/// a search's plan (never its results), and they change slowly.
final class TrigramCountCache: Sendable {
    private struct Entry {
        let count: Int
        let countedAt: ContinuousClock.Instant
    }

    private let entries = Locked<[String: Entry]>([:])
    private let lifetime: Duration
    private let capacity: Int

    init(lifetime: Duration = .seconds(60), capacity: Int = 20_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// The remembered counts among `trigrams` that are still fresh.
    func counts(of trigrams: [String]) -> [String: Int] {
        let now = ContinuousClock.now
        return entries.withLock { entries in
            var found: [String: Int] = [:]
            for trigram in trigrams {
                if let entry = entries[trigram], now - entry.countedAt < lifetime { found[trigram] = entry.count }
            }
            return found
        }
    }

    /// Remembers fresh counts.
    func remember(_ counts: [String: Int]) {
        let now = ContinuousClock.now
        entries.withLock { entries in
            if entries.count + counts.count > capacity { entries.removeAll(keepingCapacity: true) }
            for (trigram, count) in counts { entries[trigram] = Entry(count: count, countedAt: now) }
        }
    }
}
