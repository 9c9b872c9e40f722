import Foundation
import Logging
import PortalMail
import PortalStorage
import PortalTime

extension InviteMail {
    /// A relay sending queued invite mail through `transport` (a spool folder or SMTP), oldest first.
    ///
    /// Each message is marked sent, and its secret erased from the outbox, as soon as the transport
    /// took it (batches of one), so a crash in between can only send that one message again.
    static func relay(
        database: ServiceDatabase, transport: any MailTransport, from: String, acceptLink: InviteLinkTemplate,
        clock: any ServiceClock, logger: Logger
    ) -> OutboxRelay {
        var configuration = OutboxRelay.Configuration(topic: topic)
        configuration.batchSize = 1
        configuration.scrubsDelivered = true
        return OutboxRelay(database: database, configuration: configuration, clock: clock, logger: logger) { records in
            for record in records {
                let mail = try JSONDecoder().decode(InviteMail.self, from: Data(record.payload))
                try await transport.deliver(
                    OutgoingMail(
                        id: record.eventID, sender: from, recipient: mail.to,
                        text: mail.rfc5322(
                            from: "End Customer Portal <\(from)>", messageID: record.eventID, acceptLink: acceptLink)))
                logger.info(
                    "invite mail sent",
                    metadata: ["message_id": "\(record.eventID)", "organization": "\(record.organizationID)"])
            }
        }
    }
}
