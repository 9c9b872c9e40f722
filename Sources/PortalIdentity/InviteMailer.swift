import Foundation
import Logging
import PortalStorage
import ServiceLifecycle

/// Delivers queued invite mail from the outbox: by default into a spool folder (one RFC 5322 file per
/// message, written atomically), where a local MTA or a person can pick it up.
///
/// A message is marked delivered (and its secret erased from the outbox) only after its file is in
/// place, so a crash in between can only lead to the same message being spooled again, under the same
/// file name: at-least-once, with duplicates limited to that window.
final class InviteMailer: Service, Sendable {
    private let store: SQLStore
    private let spoolDirectory: String
    private let sender: String
    private let acceptURL: String
    private let pollInterval: Duration
    private let logger: Logger
    private let wakeUps: AsyncStream<Void>
    private let wakeUpSink: AsyncStream<Void>.Continuation

    init(store: SQLStore, spoolDirectory: String, sender: String, acceptURL: String, pollInterval: Duration = .seconds(1), logger: Logger) {
        self.store = store
        self.spoolDirectory = spoolDirectory
        self.sender = sender
        self.acceptURL = acceptURL
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
        try FileManager.default.createDirectory(atPath: spoolDirectory, withIntermediateDirectories: true)
        let pollInterval = self.pollInterval
        let wakeUpSink = self.wakeUpSink
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: pollInterval)
                        wakeUpSink.yield()
                    }
                }
                for await _ in wakeUps.cancelOnGracefulShutdown() {
                    do {
                        while try await deliverBatch() > 0 {}
                    } catch {
                        logger.error("mail delivery failed; will retry", metadata: ["error": "\(error)"])
                    }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            wakeUpSink.finish()
        }
    }

    /// Spools up to 50 pending messages; returns how many.
    func deliverBatch() async throws -> Int {
        let pending = try await store.read { database in try await Outbox.pending(database, topic: InviteMail.topic, limit: 50) }
        guard !pending.isEmpty else { return 0 }
        for record in pending {
            let mail = try JSONDecoder().decode(InviteMail.self, from: Data(record.payload))
            let text = mail.rfc5322(from: sender, messageID: record.eventID, acceptURL: acceptURL)
            let path = (spoolDirectory as NSString).appendingPathComponent("\(record.eventID).eml")
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            logger.info("invite mail spooled", metadata: ["message_id": "\(record.eventID)", "organization": "\(record.organizationID)"])
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try await store.transaction { database in
            try await Outbox.markDelivered(database, sequences: pending.map(\.sequence), now: now, scrubPayload: true)
        }
        return pending.count
    }
}
