import Foundation
import Logging
import PortalMail
import PortalStorage
import ServiceLifecycle

/// Delivers queued invite mail from the outbox through a mail transport (a spool folder or SMTP),
/// oldest first.
///
/// A message is marked delivered (and its secret erased from the outbox) only after the transport
/// took it, so a crash in between can only send the same message again: nothing is lost, and a
/// resend after a crash is the only duplicate. Failures are retried with exponential backoff.
final class InviteMailer: Service, Sendable {
    private let store: SQLStore
    private let transport: any MailTransport
    private let from: String
    private let acceptLink: InviteLinkTemplate
    private let pollInterval: Duration
    private let logger: Logger
    private let wakeUps: AsyncStream<Void>
    private let wakeUpSink: AsyncStream<Void>.Continuation

    init(store: SQLStore, transport: any MailTransport, from: String, acceptLink: InviteLinkTemplate, pollInterval: Duration = .seconds(1), logger: Logger) {
        self.store = store
        self.transport = transport
        self.from = from
        self.acceptLink = acceptLink
        self.pollInterval = pollInterval
        self.logger = logger
        (wakeUps, wakeUpSink) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks the mailer to look at the outbox now rather than at its next poll.
    func wakeUp() {
        wakeUpSink.yield()
    }

    /// Delivers until graceful shutdown, polling the outbox and waking early when asked.
    func run() async throws {
        let pollInterval = self.pollInterval
        let wakeUpSink = self.wakeUpSink
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask {
                    while !Task.isCancelled && !Task.isShuttingDownGracefully {
                        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pollInterval) }
                        wakeUpSink.yield()
                    }
                }
                var failures = 0
                let gauges = OutboxGauges(topic: InviteMail.topic)
                for await _ in wakeUps.cancelOnGracefulShutdown() {
                    do {
                        // One instance mails at a time, so nobody gets an invite twice.
                        while try await store.withLease("outbox-relay:" + InviteMail.topic, { try await self.deliverBatch() }) ?? 0 > 0 {}
                        failures = 0
                        gauges.recordDrained()
                    } catch {
                        try? await gauges.record(store)
                        failures += 1
                        let backoff = Duration.seconds(min(60, 1 << min(failures, 6)))
                        logger.error("mail delivery failed; retrying", metadata: ["error": "\(error)", "retry_in": "\(backoff)"])
                        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: backoff) }
                    }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            wakeUpSink.finish()
        }
    }

    /// Delivers up to 50 pending messages, marking each delivered as soon as it is sent; returns how many.
    func deliverBatch() async throws -> Int {
        let pending = try await store.read { database in try await Outbox.pending(database, topic: InviteMail.topic, limit: 50) }
        for record in pending {
            let mail = try JSONDecoder().decode(InviteMail.self, from: Data(record.payload))
            try await transport.deliver(OutgoingMail(
                id: record.eventID, sender: from, recipient: mail.to,
                text: mail.rfc5322(from: "End Customer Portal <\(from)>", messageID: record.eventID, acceptLink: acceptLink)))
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            try await store.transaction { database in
                try await Outbox.markDelivered(database, sequences: [record.sequence], now: now, scrubPayload: true)
            }
            logger.info("invite mail sent", metadata: ["message_id": "\(record.eventID)", "organization": "\(record.organizationID)"])
        }
        return pending.count
    }
}
