import Foundation
import PortalAuditOutbox
import PortalStorage
import SQLKit

/// Activations applied together inside one write transaction, with a fixed number of statements.
///
/// It reads the lines, entitlements and earlier idempotency keys the batch touches, decides each
/// activation in arrival order against the running line counts (exactly as if they ran one after
/// another), then writes every accepted activation, line change, counter and audit event with one
/// statement each. Run it only inside a write transaction: the decisions rely on nothing else
/// writing between the reads and the writes.
struct ActivationBatch {
    private let activations: [PendingActivation]

    init(_ activations: [PendingActivation]) {
        self.activations = activations
    }

    private struct LineKey: Hashable {
        let entitlementID: String
        let productID: String
    }

    private struct IdempotencyKey: Hashable {
        let organizationID: String
        let key: String
    }

    private struct CounterKey: Hashable {
        let organizationID: String
        let productID: String
    }

    private struct Line {
        let available: Int64
        var activated: Int64
        let productName: String
    }

    /// Each activation's outcome, in order.
    func run(_ database: any SQLDatabase) async throws -> [Result<ActivationRecord, any Error>] {
        var earlier = try await earlierActivations(database)
        let entitlements = try await entitlements(database)
        var lines = try await lines(database)
        var accepted: [(record: ActivationRecord, idempotencyKey: String)] = []
        var outcomes: [Result<ActivationRecord, any Error>] = []
        for pending in activations {
            let request = pending.request
            let key = IdempotencyKey(organizationID: request.organizationID, key: request.idempotencyKey)
            outcomes.append(
                Result {
                    if let first = earlier[key] {
                        if let field = Self.firstDifference(first, request) {
                            throw EntitlementsError.idempotencyKeyReused(differingField: field)
                        }
                        return first
                    }
                    guard let entitlement = entitlements[request.entitlementID],
                        entitlement.organizationID == request.organizationID
                    else {
                        throw EntitlementsError.entitlementNotFound(entitlementID: request.entitlementID)
                    }
                    if let expiration = entitlement.expirationDate, expiration <= pending.now {
                        throw EntitlementsError.entitlementExpired(
                            entitlementID: request.entitlementID, day: EntitlementRecord.day(expiration))
                    }
                    let lineKey = LineKey(entitlementID: request.entitlementID, productID: request.productID)
                    guard let line = lines[lineKey] else {
                        throw EntitlementsError.productNotOnEntitlement(
                            entitlementID: request.entitlementID, productID: request.productID)
                    }
                    guard line.available - line.activated >= request.quantity else {
                        throw EntitlementsError.overActivation(
                            requested: request.quantity, unactivated: line.available - line.activated,
                            available: line.available, productName: line.productName,
                            entitlementID: request.entitlementID)
                    }
                    lines[lineKey]!.activated += request.quantity
                    let record = ActivationRecord(
                        id: "act_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""),
                        organizationID: request.organizationID,
                        entitlementID: request.entitlementID, productID: request.productID,
                        productName: line.productName, quantity: request.quantity,
                        projectName: request.projectName, projectManager: request.projectManager,
                        serialNumber: request.serialNumber,
                        activatedBy: pending.actor.displayName, activatedByMemberID: pending.actor.memberID,
                        activatedAt: pending.now)
                    earlier[key] = record
                    accepted.append((record, request.idempotencyKey))
                    return record
                })
        }
        if !accepted.isEmpty { try await write(accepted, database) }
        return outcomes
    }

    /// The first request field in which a retry differs from the activation its key recorded, if any:
    /// a key stands for one whole request.
    static func firstDifference(_ first: ActivationRecord, _ request: EntitlementsStore.ActivationRequest) -> String? {
        if first.entitlementID != request.entitlementID { return "entitlement_id" }
        if first.productID != request.productID { return "product_id" }
        if first.quantity != request.quantity { return "quantity" }
        if first.projectName != request.projectName { return "project_name" }
        if first.projectManager != request.projectManager { return "project_manager" }
        if first.serialNumber != request.serialNumber { return "serial_number" }
        return nil
    }

    // MARK: Reads

    private func list(_ values: some Sequence<String>) -> SQLQueryString {
        Set(values).map { "\(bind: $0)" as SQLQueryString }.joined(separator: ", ")
    }

    /// Activations already recorded under the batch's idempotency keys.
    private func earlierActivations(_ database: any SQLDatabase) async throws -> [IdempotencyKey: ActivationRecord] {
        let rows = try await database.raw(
            """
            SELECT \(unsafeRaw: ActivationRecord.columns), idempotency_key FROM activations
            WHERE org_id IN (\(list(activations.map(\.request.organizationID)))) AND idempotency_key IN (\(list(activations.map(\.request.idempotencyKey))))
            """
        ).all()
        var earlier: [IdempotencyKey: ActivationRecord] = [:]
        for row in rows {
            let record = try ActivationRecord(row: row)
            earlier[
                IdempotencyKey(
                    organizationID: record.organizationID,
                    key: try row.decode(column: "idempotency_key", as: String.self))] = record
        }
        return earlier
    }

    /// The owner and expiration of each entitlement the batch names.
    private func entitlements(
        _ database: any SQLDatabase
    ) async throws -> [String: (organizationID: String, expirationDate: Int64?)] {
        let rows = try await database.raw(
            """
            SELECT id, org_id, expiration_date FROM entitlements WHERE id IN (\(list(activations.map(\.request.entitlementID))))
            """
        ).all()
        var entitlements: [String: (organizationID: String, expirationDate: Int64?)] = [:]
        for row in rows {
            entitlements[try row.decode(column: "id", as: String.self)] = (
                try row.decode(column: "org_id", as: String.self),
                try row.decode(column: "expiration_date", as: Int64?.self)
            )
        }
        return entitlements
    }

    /// The current counts of every line of the entitlements the batch names.
    private func lines(_ database: any SQLDatabase) async throws -> [LineKey: Line] {
        let rows = try await database.raw(
            """
            SELECT l.entitlement_id, l.product_id, l.available, l.activated, p.name
            FROM entitlement_lines l JOIN products p ON p.id = l.product_id
            WHERE l.entitlement_id IN (\(list(activations.map(\.request.entitlementID))))
            """
        ).all()
        var lines: [LineKey: Line] = [:]
        for row in rows {
            let key = LineKey(
                entitlementID: try row.decode(column: "entitlement_id", as: String.self),
                productID: try row.decode(column: "product_id", as: String.self))
            lines[key] = Line(
                available: try row.decode(column: "available", as: Int64.self),
                activated: try row.decode(column: "activated", as: Int64.self),
                productName: try row.decode(column: "name", as: String.self))
        }
        return lines
    }

    // MARK: Writes

    /// Records the accepted activations, their line counts, the per-product totals and one audit event each.
    private func write(
        _ accepted: [(record: ActivationRecord, idempotencyKey: String)], _ database: any SQLDatabase
    ) async throws {
        var lineIncreases: [LineKey: Int64] = [:]
        var totalIncreases: [CounterKey: (activated: Int64, activations: Int64)] = [:]
        for (record, _) in accepted {
            lineIncreases[LineKey(entitlementID: record.entitlementID, productID: record.productID), default: 0] +=
                record.quantity
            totalIncreases[
                CounterKey(organizationID: record.organizationID, productID: record.productID), default: (0, 0)
            ].activated += record.quantity
            totalIncreases[CounterKey(organizationID: record.organizationID, productID: record.productID)]!
                .activations += 1
        }
        let increases: [SQLQueryString] = lineIncreases.map { line, increase in
            "SELECT \(bind: line.entitlementID) AS entitlement_id, \(bind: line.productID) AS product_id, \(bind: increase) AS increase"
        }
        // Conditional, like a single activation's update, and backed by the lines' CHECK constraint:
        // should the counts read above ever be stale, the batch fails whole and nothing is written.
        let changed = try await database.raw(
            """
            UPDATE entitlement_lines SET activated = activated + increases.increase
            FROM (\(increases.joined(separator: " UNION ALL "))) AS increases
            WHERE entitlement_lines.entitlement_id = increases.entitlement_id AND entitlement_lines.product_id = increases.product_id
              AND entitlement_lines.available - entitlement_lines.activated >= increases.increase
            RETURNING entitlement_lines.entitlement_id
            """
        ).all()
        guard changed.count == lineIncreases.count else {
            throw EntitlementsError.licensesChangedMeanwhile
        }
        let rows: [SQLQueryString] = accepted.map { record, idempotencyKey in
            """
            (\(bind: record.id), \(bind: record.organizationID), \(bind: record.entitlementID), \(bind: record.productID), \(bind: record.productName),
             \(bind: record.quantity), \(bind: record.projectName), \(bind: record.projectManager), \(bind: record.serialNumber),
             \(bind: record.activatedBy), \(bind: record.activatedByMemberID), \(bind: record.activatedAt), \(bind: idempotencyKey),
             \(bind: record.searchDocument))
            """
        }
        try await database.raw(
            """
            INSERT INTO activations (id, org_id, entitlement_id, product_id, product_name, quantity, project_name, project_manager,
                                     serial_number, activated_by, activated_by_member_id, activated_at, idempotency_key, search_doc)
            VALUES \(rows.joined(separator: ", "))
            """
        ).run()
        let totals: [SQLQueryString] = totalIncreases.map { key, increase in
            "(\(bind: key.organizationID), \(bind: key.productID), 0, \(bind: increase.activated), \(bind: increase.activations))"
        }
        try await database.raw(
            """
            INSERT INTO product_totals (org_id, product_id, available, activated, activations) VALUES \(totals.joined(separator: ", "))
            ON CONFLICT (org_id, product_id) DO UPDATE
            SET activated = product_totals.activated + excluded.activated, activations = product_totals.activations + excluded.activations
            """
        ).run()
        try await AuditOutbox.append(
            database,
            events: accepted.map { record, _ in
                AuditOutbox.event(
                    organizationID: record.organizationID, type: .activations, action: .licensesActivated,
                    message:
                        "Activated \(record.quantity) \(record.quantity == 1 ? "license" : "licenses") of \(record.productName) for project \(record.projectName)",
                    actor: AuditOutbox.Actor(memberID: record.activatedByMemberID, displayName: record.activatedBy),
                    subjectKind: .activation,
                    subjectID: record.id, now: record.activatedAt)
            })
    }
}
