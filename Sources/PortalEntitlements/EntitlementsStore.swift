import Foundation
import PortalAPI
import PortalAuditOutbox
import PortalStorage
import SQLKit

/// The entitlements service's data: the product catalog, each organization's entitlements with one
/// line per product, and activations — with every transfer and activation recorded in the outbox.
///
/// The central invariant (no line ever has more activated than available licenses) is checked by
/// activation under the database's write lock, and a CHECK constraint on the lines backs it.
final class EntitlementsStore: Sendable {
    let database: ServiceDatabase
    let searchLimits: SearchLimits
    /// Trigram counts that chose recent searches' plans (SQLite).
    let trigramCounts = TrigramCountCache()
    /// PostgreSQL's statistics of the search trigrams, and searches known to reach the count's cap.
    let trigramStatistics = TrigramStatistics()
    let denseSearches = DenseSearches()
    private let activations: ActivationBatcher

    init(database: ServiceDatabase, searchLimits: SearchLimits = .init()) {
        self.database = database
        self.searchLimits = searchLimits
        activations = ActivationBatcher(database: database)
    }

    /// How activation searches decide between their plans.
    struct SearchLimits: Sendable {
        /// Below this many rows a trigram is rare enough to drive a search.
        var rareTrigram = 10_000
        /// Matches counted exactly for filters the counters cannot answer; beyond it `total_size` is this cap.
        var countCap = 10_000
        /// An organization with at most this many activations searches its own rows rather than a
        /// phrase's candidates across every organization (which may be mostly others').
        var ownRowsScan = 50_000
    }

    // MARK: Catalog

    /// Creates or replaces a catalog product; returns whether it was new.
    func upsertProduct(_ product: ProductRecord, now: Int64) async throws -> Bool {
        try await database.transaction { database in
            let exists =
                try await database.raw("SELECT 1 AS found FROM products WHERE id = \(bind: product.id)").first() != nil
            try await database.raw(
                """
                INSERT INTO products (id, name, license_type, description, deployment_type, updated_at)
                VALUES (\(bind: product.id), \(bind: product.name), \(bind: product.licenseType), \(bind: product.description),
                        \(bind: product.deploymentType), \(bind: now))
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, license_type = excluded.license_type,
                    description = excluded.description, deployment_type = excluded.deployment_type, updated_at = excluded.updated_at
                """
            ).run()
            try await database.raw(
                """
                UPDATE entitlements SET \(unsafeRaw: Self.listingColumns)
                WHERE id IN (SELECT entitlement_id FROM entitlement_lines WHERE product_id = \(bind: product.id))
                """
            ).run()
            return !exists
        }
    }

    /// The assignments that recompute an entitlement's listing columns (first product by name, its
    /// description, total available) from its lines, for `UPDATE entitlements SET …`.
    static let listingColumns = """
        first_product_name = COALESCE((SELECT p.name FROM entitlement_lines l JOIN products p ON p.id = l.product_id
                                       WHERE l.entitlement_id = entitlements.id ORDER BY lower(p.name), p.id LIMIT 1), ''),
        first_product_description = COALESCE((SELECT p.description FROM entitlement_lines l JOIN products p ON p.id = l.product_id
                                              WHERE l.entitlement_id = entitlements.id ORDER BY lower(p.name), p.id LIMIT 1), ''),
        total_available = COALESCE((SELECT SUM(l.available) FROM entitlement_lines l WHERE l.entitlement_id = entitlements.id), 0)
        """

    /// Recomputes one entitlement's listing columns after its lines changed.
    private static func refreshListing(_ database: any SQLDatabase, entitlementID: String) async throws {
        try await database.raw("UPDATE entitlements SET \(unsafeRaw: listingColumns) WHERE id = \(bind: entitlementID)")
            .run()
    }

    // MARK: Transfers

    /// An entitlement as a transfer describes it.
    struct Transfer: Sendable {
        let entitlementID: String
        let organizationID: String
        let salesOrder: String
        let poNumber: String
        let orderDate: Int64
        let expirationDate: Int64?
        let lines: [(productID: String, quantity: Int64)]
    }

    /// Records a transfer. Repeating it is harmless; a repeat that only raises line quantities adds
    /// them; any other change is `FAILED_PRECONDITION` naming what differs.
    func transfer(
        _ transfer: Transfer, actor: AuditOutbox.Actor, now: Int64
    ) async throws -> (EntitlementRecord, created: Bool) {
        try await database.transaction { database in
            for line in transfer.lines {
                guard
                    try await database.raw("SELECT 1 AS found FROM products WHERE id = \(bind: line.productID)").first()
                        != nil
                else {
                    throw EntitlementsError.productNotInCatalog(productID: line.productID)
                }
            }
            if let existing = try await Self.entitlement(database, id: transfer.entitlementID, organizationID: nil) {
                let added = try Self.quantityIncreases(existing: existing, transfer: transfer)
                for (productID, increase) in added {
                    try await database.raw(
                        """
                        UPDATE entitlement_lines SET available = available + \(bind: increase)
                        WHERE entitlement_id = \(bind: transfer.entitlementID) AND product_id = \(bind: productID)
                        """
                    ).run()
                    try await Self.addAvailable(
                        database, increase, of: productID, organizationID: transfer.organizationID)
                }
                if !added.isEmpty {
                    try await Self.refreshListing(database, entitlementID: transfer.entitlementID)
                    let total = added.reduce(0) { $0 + $1.1 }
                    try await AuditOutbox.append(
                        database, organizationID: transfer.organizationID, type: .licenses,
                        action: .entitlementTransferred,
                        message: "Added \(total) licenses to entitlement \(transfer.entitlementID)", actor: actor,
                        subjectKind: .entitlement,
                        subjectID: transfer.entitlementID, now: now)
                }
                return (try await Self.entitlement(database, id: transfer.entitlementID, organizationID: nil)!, false)
            }
            try await database.raw(
                """
                INSERT INTO entitlements (id, org_id, sales_order, po_number, order_date, expiration_date, transferred_at)
                VALUES (\(bind: transfer.entitlementID), \(bind: transfer.organizationID), \(bind: transfer.salesOrder), \(bind: transfer.poNumber),
                        \(bind: transfer.orderDate), \(bind: transfer.expirationDate), \(bind: now))
                """
            ).run()
            for (position, line) in transfer.lines.enumerated() {
                try await database.raw(
                    """
                    INSERT INTO entitlement_lines (entitlement_id, product_id, position, available, activated)
                    VALUES (\(bind: transfer.entitlementID), \(bind: line.productID), \(bind: position), \(bind: line.quantity), 0)
                    """
                ).run()
                try await Self.addAvailable(
                    database, line.quantity, of: line.productID, organizationID: transfer.organizationID)
            }
            try await Self.refreshListing(database, entitlementID: transfer.entitlementID)
            let total = transfer.lines.reduce(0) { $0 + $1.quantity }
            try await AuditOutbox.append(
                database, organizationID: transfer.organizationID, type: .licenses, action: .entitlementTransferred,
                message:
                    "Entitlement \(transfer.entitlementID) transferred: \(total) licenses of \(transfer.lines.count) products (sales order \(transfer.salesOrder))",
                actor: actor, subjectKind: .entitlement, subjectID: transfer.entitlementID, now: now)
            return (try await Self.entitlement(database, id: transfer.entitlementID, organizationID: nil)!, true)
        }
    }

    /// Adds transferred licenses to the organization's totals for the product.
    private static func addAvailable(
        _ database: any SQLDatabase, _ quantity: Int64, of productID: String, organizationID: String
    ) async throws {
        try await database.raw(
            """
            INSERT INTO product_totals (org_id, product_id, available, activated, activations)
            VALUES (\(bind: organizationID), \(bind: productID), \(bind: quantity), 0, 0)
            ON CONFLICT (org_id, product_id) DO UPDATE SET available = product_totals.available + excluded.available
            """
        ).run()
    }

    /// The quantity a repeated transfer adds per product, or the reason it is a conflicting change.
    private static func quantityIncreases(existing: EntitlementRecord, transfer: Transfer) throws -> [(String, Int64)] {
        func conflict(_ field: String) -> EntitlementsError {
            .transferConflict(field: field, entitlementID: transfer.entitlementID)
        }
        if existing.organizationID != transfer.organizationID { throw conflict("organization_id") }
        if existing.salesOrder != transfer.salesOrder { throw conflict("sales_order") }
        if existing.poNumber != transfer.poNumber { throw conflict("po_number") }
        if existing.orderDate != transfer.orderDate { throw conflict("order_date") }
        if existing.expirationDate != transfer.expirationDate { throw conflict("expiration_date") }
        guard Set(existing.lines.map(\.productID)) == Set(transfer.lines.map(\.productID)) else {
            throw conflict("lines")
        }
        var increases: [(String, Int64)] = []
        for line in transfer.lines {
            let current = existing.lines.first { $0.productID == line.productID }!
            if line.quantity < current.available { throw conflict("lines[\(line.productID)].quantity") }
            if line.quantity > current.available {
                increases.append((line.productID, line.quantity - current.available))
            }
        }
        return increases
    }

    // MARK: Activations

    /// What an activation asks for.
    struct ActivationRequest: Sendable {
        let organizationID: String
        let entitlementID: String
        let productID: String
        let quantity: Int64
        let projectName: String
        let projectManager: String
        let serialNumber: String
        let idempotencyKey: String
    }

    /// Activates licenses of one line, never more than it has unactivated, whatever runs concurrently.
    /// A repeated idempotency key returns the first activation and activates nothing more.
    ///
    /// Concurrent activations share a transaction (see `ActivationBatcher`); each still succeeds or
    /// fails on its own, as if they had run one after another.
    func activate(_ request: ActivationRequest, actor: AuditOutbox.Actor, now: Int64) async throws -> ActivationRecord {
        try await activations.activate(PendingActivation(request: request, actor: actor, now: now))
    }

    /// Records a `LICENSES` event for each entitlement whose expiration has passed, once.
    func recordExpirations(now: Int64) async throws -> Int {
        try await database.transaction { database in
            let rows = try await database.raw(
                """
                SELECT id, org_id, expiration_date FROM entitlements
                WHERE expiry_recorded_at IS NULL AND expiration_date IS NOT NULL AND expiration_date <= \(bind: now) LIMIT 500
                """
            ).all()
            for row in rows {
                let id = try row.decode(column: "id", as: String.self)
                let organizationID = try row.decode(column: "org_id", as: String.self)
                let expiration = try row.decode(column: "expiration_date", as: Int64.self)
                try await database.raw(
                    "UPDATE entitlements SET expiry_recorded_at = \(bind: now) WHERE id = \(bind: id)"
                ).run()
                try await AuditOutbox.append(
                    database, organizationID: organizationID, type: .licenses, action: .entitlementExpired,
                    message: "Entitlement \(id) expired on \(EntitlementRecord.day(expiration))", actor: .system,
                    subjectKind: .entitlement,
                    subjectID: id, now: now)
            }
            return rows.count
        }
    }

    // MARK: Reading

    /// An entitlement with its lines, or nil; `organizationID` nil matches any organization.
    static func entitlement(
        _ database: any SQLDatabase, id: String, organizationID: String?
    ) async throws -> EntitlementRecord? {
        try await entitlements(database, ids: [id], organizationID: organizationID).first
    }

    /// Entitlements with their lines, in the order of `ids` (two queries whatever their number);
    /// ids that do not exist, or belong to another organization than a non-nil `organizationID`, are left out.
    static func entitlements(
        _ database: any SQLDatabase, ids: [String], organizationID: String?
    ) async throws -> [EntitlementRecord] {
        var records: [String: EntitlementRecord] = [:]
        // In chunks: a product held by very many entitlements must not exceed the bound-parameter limit.
        for start in stride(from: 0, to: ids.count, by: 500) {
            let list = ids[start..<min(start + 500, ids.count)].map { "\(bind: $0)" as SQLQueryString }.joined(
                separator: ", ")
            var lines: [String: [EntitlementLineRecord]] = [:]
            for row in try await database.raw(
                """
                SELECT l.entitlement_id, l.product_id, l.available, l.activated, p.name, p.description, p.deployment_type, p.license_type
                FROM entitlement_lines l JOIN products p ON p.id = l.product_id
                WHERE l.entitlement_id IN (\(list)) ORDER BY lower(p.name), p.id
                """
            ).all() {
                lines[try row.decode(column: "entitlement_id", as: String.self), default: []].append(
                    try EntitlementLineRecord(row: row))
            }
            for row in try await database.raw("SELECT * FROM entitlements WHERE id IN (\(list))").all() {
                let id = try row.decode(column: "id", as: String.self)
                let record = try EntitlementRecord(row: row, lines: lines[id] ?? [])
                if organizationID == nil || record.organizationID == organizationID { records[id] = record }
            }
        }
        return ids.compactMap { records[$0] }
    }

    /// One entitlement of the organization (`NOT_FOUND` for another organization's).
    func entitlement(id: String, organizationID: String) async throws -> EntitlementRecord {
        guard
            let record = try await database.read({ database in
                try await Self.entitlement(database, id: id, organizationID: organizationID)
            })
        else {
            throw EntitlementsError.entitlementNotFound(entitlementID: id)
        }
        return record
    }

    /// Available, activated and unactivated licenses over all the organization's entitlements.
    func totals(organizationID: String) async throws -> (available: Int64, activated: Int64) {
        try await database.read { database in
            let row = try await database.raw(
                """
                SELECT CAST(COALESCE(SUM(available), 0) AS BIGINT) AS available, CAST(COALESCE(SUM(activated), 0) AS BIGINT) AS activated
                FROM product_totals WHERE org_id = \(bind: organizationID)
                """
            ).first()
            return (
                try row?.decode(column: "available", as: Int64.self) ?? 0,
                try row?.decode(column: "activated", as: Int64.self) ?? 0
            )
        }
    }

    /// The organization's most recent activations, newest first.
    func recentActivations(organizationID: String, limit: Int) async throws -> [ActivationRecord] {
        try await database.read { database in
            try await database.raw(
                """
                SELECT \(unsafeRaw: ActivationRecord.columns) FROM activations WHERE org_id = \(bind: organizationID)
                ORDER BY activated_at DESC, id DESC LIMIT \(unsafeRaw: String(limit))
                """
            ).all().map(ActivationRecord.init(row:))
        }
    }
}
