import Foundation
import Logging
import PortalAPI
import PortalAuditOutbox
import PortalRPC
import PortalStorage
import PortalTime
import SQLKit

/// Notices to the Admins of an organization that an entitlement with unactivated licenses expires in
/// 30, 7 and 1 days (configurable), and when it expires: each once per entitlement and threshold, as
/// an audit event and a mail (sent by identity, which knows the Admins), both from the outbox of the
/// transaction that records the notice — so a restart or a second instance never sends one twice.
struct ExpiryNotice: Codable, Sendable {
    /// The outbox topic relayed to identity's `NotifyAdmins`.
    static let topic = "expiry-notices"
    static let day: Int64 = 86_400_000

    let noticeID: String
    let organizationID: String
    let subject: String
    let text: String

    /// Which notice is due for an entitlement expiring at `expiration`, given the thresholds (days,
    /// descending): the smallest threshold already reached, 0 once expired (for a day after), nil
    /// when none is (or it expired longer ago: no late notice of an old expiry).
    static func threshold(expiration: Int64, now: Int64, thresholds: [Int]) -> Int? {
        if expiration <= now { return now - expiration < day ? 0 : nil }
        return thresholds.filter { expiration - now <= Int64($0) * day }.min()
    }

    /// The notice for `entitlement` at `threshold` days, listing its products' unactivated licenses.
    init(entitlement: EntitlementRecord, threshold: Int) {
        let expiry = EntitlementRecord.day(entitlement.expirationDate ?? 0)
        noticeID = "expiry-\(entitlement.id)-\(threshold)"
        organizationID = entitlement.organizationID
        subject =
            switch threshold {
            case 0: "Entitlement \(entitlement.id) expired on \(expiry) with unactivated licenses"
            case 1: "Entitlement \(entitlement.id) expires tomorrow (\(expiry)): licenses are not activated yet"
            default:
                "Entitlement \(entitlement.id) expires in \(threshold) days (\(expiry)): licenses are not activated yet"
            }
        let lines = entitlement.lines.filter { $0.available > $0.activated }.map { line in
            "  \(line.productName) (\(line.productID)): \(line.available - line.activated) of \(line.available) not activated"
        }
        let opening =
            threshold == 0
            ? "Entitlement \(entitlement.id) (sales order \(entitlement.salesOrder)) expired on \(expiry). These licenses were never activated and can no longer be:"
            : "Entitlement \(entitlement.id) (sales order \(entitlement.salesOrder)) expires on \(expiry). These licenses are not activated yet:"
        let closing =
            threshold == 0
            ? "Contact your reseller to renew the entitlement."
            : "Activate them in the End Customer Portal (Licensing) before they expire."
        text = ([opening, ""] + lines + ["", closing]).joined(separator: "\n")
    }

    /// A relay handing notices to identity's `NotifyAdmins` over `channel`, oldest first.
    static func relay(
        database: ServiceDatabase, channel: any RPCChannel, clock: any ServiceClock, logger: Logger
    ) -> OutboxRelay {
        let identity = Portal_Identity_V1_IdentityClient(channel: channel)
        var configuration = OutboxRelay.Configuration(topic: topic)
        configuration.batchSize = 20
        return OutboxRelay(database: database, configuration: configuration, clock: clock, logger: logger) { records in
            for record in records {
                let notice = try JSONDecoder().decode(ExpiryNotice.self, from: Data(record.payload))
                _ = try await identity.notifyAdmins(
                    .with {
                        $0.organizationID = notice.organizationID
                        $0.noticeID = notice.noticeID
                        $0.subject = notice.subject
                        $0.text = notice.text
                    }, options: CallOptions(timeout: .seconds(10)))
            }
        }
    }
}

extension EntitlementsStore {
    /// Records the expiry notices due now (see `ExpiryNotice`); returns how many.
    func recordExpiryNotices(now: Int64, thresholds: [Int]) async throws -> Int {
        let horizon = now + Int64(thresholds.max() ?? 0) * ExpiryNotice.day
        return try await database.transaction { database in
            // Entitlements expiring within the horizon, or expired within a day, with licenses left
            // and no notice yet at expiry.
            let ids = try await database.raw(
                """
                SELECT e.id FROM entitlements e
                WHERE e.expiration_date IS NOT NULL AND e.expiration_date <= \(bind: horizon)
                  AND e.expiration_date > \(bind: now - ExpiryNotice.day)
                  AND EXISTS (SELECT 1 FROM entitlement_lines l WHERE l.entitlement_id = e.id AND l.available > l.activated)
                  AND NOT EXISTS (SELECT 1 FROM expiry_notices n WHERE n.entitlement_id = e.id AND n.threshold_days = 0)
                ORDER BY e.expiration_date
                """
            ).all().map { try $0.decode(column: "id", as: String.self) }
            // The nearest threshold already noticed, per entitlement.
            var noticed: [String: Int64] = [:]
            for start in stride(from: 0, to: ids.count, by: 500) {
                let list = ids[start..<min(start + 500, ids.count)].map { "\(bind: $0)" as SQLQueryString }
                    .joined(separator: ", ")
                for row in try await database.raw(
                    """
                    SELECT entitlement_id, MIN(threshold_days) AS smallest FROM expiry_notices
                    WHERE entitlement_id IN (\(list)) GROUP BY entitlement_id
                    """
                ).all() {
                    noticed[try row.decode(column: "entitlement_id", as: String.self)] =
                        try row.decode(column: "smallest", as: Int64.self)
                }
            }
            var recorded = 0
            for entitlement in try await Self.entitlements(database, ids: ids, organizationID: nil) {
                guard let expiration = entitlement.expirationDate,
                    let threshold = ExpiryNotice.threshold(expiration: expiration, now: now, thresholds: thresholds),
                    entitlement.lines.contains(where: { $0.available > $0.activated })
                else { continue }
                if let sent = noticed[entitlement.id], sent <= threshold { continue }  // this one, or a later one, went out
                try await database.raw(
                    """
                    INSERT INTO expiry_notices (entitlement_id, threshold_days, noticed_at)
                    VALUES (\(bind: entitlement.id), \(bind: threshold), \(bind: now))
                    """
                ).run()
                let notice = ExpiryNotice(entitlement: entitlement, threshold: threshold)
                try await Outbox.append(
                    database, topic: ExpiryNotice.topic, eventID: notice.noticeID,
                    organizationID: entitlement.organizationID, payload: Array(try JSONEncoder().encode(notice)),
                    now: now)
                try await AuditOutbox.append(
                    database, organizationID: entitlement.organizationID, type: .licenses, action: .expiryNoticeSent,
                    message: "Admins notified: \(notice.subject)", actor: .system, subjectKind: .entitlement,
                    subjectID: entitlement.id, now: now)
                recorded += 1
            }
            return recorded
        }
    }
}
