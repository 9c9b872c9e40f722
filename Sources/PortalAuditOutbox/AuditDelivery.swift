import Logging
import PortalAPI
import PortalRPC
import PortalStorage
import PortalTime

extension AuditOutbox {
    /// The outbox topic of audit events.
    public static let topic = "audit"

    /// A relay delivering `database`'s audit events to the audit service behind `channel`, in batches of
    /// up to 500. The audit service stores each event id once, so a batch sent again (its
    /// acknowledgement lost to a crash, a timeout or a restart) duplicates nothing; events wait in the
    /// outbox while the audit service is away.
    public static func relay(
        database: ServiceDatabase, channel: any RPCChannel, clock: any ServiceClock = .system, logger: Logger
    ) -> OutboxRelay {
        let audit = Portal_Audit_V1_AuditClient(channel: channel)
        return OutboxRelay(database: database, configuration: .init(topic: topic), clock: clock, logger: logger) {
            records in
            var request = Portal_Audit_V1_AppendEventsRequest()
            request.events = try records.map { try Portal_Audit_V1_NewEvent(serializedBytes: $0.payload) }
            _ = try await audit.appendEvents(request, options: CallOptions(timeout: .seconds(10)))
        }
    }
}
