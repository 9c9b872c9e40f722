import Foundation
import Logging
import PortalMail
import PortalStorage
import PortalTime
import SQLKit

/// A notice to one Admin waiting in the outbox for the mailer (expiry notices, from entitlements).
struct NoticeMail: Codable, Sendable {
    /// The outbox topic of notice mail.
    static let topic = "notice-mail"

    let to: String
    let organizationID: String
    let subject: String
    let text: String

    /// The message as RFC 5322 text (CRLF line endings).
    func rfc5322(from sender: String, messageID: String) -> String {
        PortalMessage.rfc5322(
            from: sender, to: to, subject: subject, messageID: messageID, organizationID: organizationID,
            bodyLines: text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
    }

    /// A relay sending queued notices through `transport`.
    static func relay(
        database: ServiceDatabase, transport: any MailTransport, from: String, clock: any ServiceClock, logger: Logger
    ) -> OutboxRelay {
        MailRelay.make(
            topic: topic, scrubsDelivered: false, database: database, transport: transport, clock: clock, logger: logger
        ) { record in
            let mail = try JSONDecoder().decode(NoticeMail.self, from: Data(record.payload))
            return OutgoingMail(
                id: record.eventID, sender: from, recipient: mail.to,
                text: mail.rfc5322(from: "End Customer Portal <\(from)>", messageID: record.eventID))
        }
    }
}

extension IdentityStore {
    /// Queues the notice for every Admin of the organization, once per `noticeID`; returns how many
    /// were queued (0 for a notice id seen before).
    func notifyAdmins(
        organizationID: String, noticeID: String, subject: String, text: String, now: Milliseconds
    )
        async throws -> Int
    {
        try await database.transaction(serializing: ["notice:" + noticeID]) { database in
            if try await database.raw("SELECT notice_id FROM notices WHERE notice_id = \(bind: noticeID)").first()
                != nil
            {
                return 0
            }
            try await database.raw(
                """
                INSERT INTO notices (notice_id, org_id, received_at) VALUES (\(bind: noticeID), \(bind: organizationID), \(bind: now))
                """
            ).run()
            let admins = try await database.raw(
                """
                SELECT email FROM members WHERE org_id = \(bind: organizationID) AND role = \(bind: MemberRole.admin.rawValue)
                ORDER BY email
                """
            ).all().map { try $0.decode(column: "email", as: String.self) }
            for email in admins {
                let mail = NoticeMail(to: email, organizationID: organizationID, subject: subject, text: text)
                try await Outbox.append(
                    database, topic: NoticeMail.topic, eventID: Self.newID("notice"), organizationID: organizationID,
                    payload: Array(try JSONEncoder().encode(mail)), now: now)
            }
            return admins.count
        }
    }
}
