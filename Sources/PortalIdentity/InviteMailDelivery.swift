import Foundation
import Logging
import PortalMail
import PortalStorage
import PortalTime

/// Relays of the mail identity queues in its outbox (invites, notices to Admins): each message is
/// handed to the transport (a spool folder or SMTP) on its own, oldest first, and marked sent as soon
/// as the transport took it, so a crash in between can only send that one message again.
enum MailRelay {
    /// A relay of `topic`, whose records `compose` turns into mail; `scrubsDelivered` erases a sent
    /// message's payload (invites carry a secret).
    static func make(
        topic: String, scrubsDelivered: Bool, database: ServiceDatabase, transport: any MailTransport,
        clock: any ServiceClock, logger: Logger, compose: @escaping @Sendable (Outbox.Record) throws -> OutgoingMail
    ) -> OutboxRelay {
        var configuration = OutboxRelay.Configuration(topic: topic)
        configuration.batchSize = 1
        configuration.scrubsDelivered = scrubsDelivered
        return OutboxRelay(database: database, configuration: configuration, clock: clock, logger: logger) { records in
            for record in records {
                try await transport.deliver(try compose(record))
                logger.info(
                    "mail sent",
                    metadata: [
                        "topic": "\(topic)", "message_id": "\(record.eventID)",
                        "organization": "\(record.organizationID)",
                    ])
            }
        }
    }
}

extension InviteMail {
    /// A relay sending queued invite mail through `transport`; a sent invite's secret is erased from the outbox.
    static func relay(
        database: ServiceDatabase, transport: any MailTransport, from: String, acceptLink: InviteLinkTemplate,
        clock: any ServiceClock, logger: Logger
    ) -> OutboxRelay {
        MailRelay.make(
            topic: topic, scrubsDelivered: true, database: database, transport: transport, clock: clock, logger: logger
        ) { record in
            let mail = try JSONDecoder().decode(InviteMail.self, from: Data(record.payload))
            return OutgoingMail(
                id: record.eventID, sender: from, recipient: mail.to,
                text: mail.rfc5322(
                    from: "End Customer Portal <\(from)>", messageID: record.eventID, acceptLink: acceptLink))
        }
    }
}
