import Foundation
import Logging
import PortalAPI
import PortalRPC
import PortalStorage
import ServiceLifecycle

/// Drains a service's audit outbox into the audit service: oldest first, in batches, marking events
/// delivered only after the audit service acknowledged them.
///
/// The audit service stores each event id once, so resending a batch whose acknowledgement was lost
/// (a crash, a timeout, the audit service restarting) duplicates nothing; events wait in the outbox
/// while the audit service is away, retried with exponential backoff (0.2 s doubling to 30 s).
public final class AuditOutboxRelay: Service, Sendable {
    /// The outbox topic of audit events.
    public static let topic = "audit"

    private let store: SQLStore
    private let audit: Portal_Audit_V1_AuditClient
    private let batchSize: Int
    private let pollInterval: Duration
    private let logger: Logger

    /// A relay from `store`'s outbox to the audit service behind `channel`.
    public init(store: SQLStore, channel: any RPCChannel, batchSize: Int = 500, pollInterval: Duration = .milliseconds(200), logger: Logger) {
        self.store = store
        audit = Portal_Audit_V1_AuditClient(channel: channel)
        self.batchSize = batchSize
        self.pollInterval = pollInterval
        self.logger = logger
    }

    /// Relays until graceful shutdown.
    public func run() async throws {
        var failures = 0
        let gauges = OutboxGauges(topic: Self.topic)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                // One instance of the service relays at a time, so events go out once and in order.
                guard let sent = try await store.withLease("outbox-relay:" + Self.topic, { try await self.relayBatch() }) else {
                    await pause(pollInterval)
                    continue
                }
                failures = 0
                if sent < batchSize { gauges.recordDrained() } else { try? await gauges.record(store) }
                if sent == 0 { await pause(pollInterval) }
            } catch is CancellationError {
                break
            } catch {
                failures += 1
                let delay = Duration.milliseconds(min(30_000, 200 << min(failures - 1, 8)))
                try? await gauges.record(store)
                if failures == 1 || failures % 10 == 0 {
                    logger.warning("audit delivery failed; retrying", metadata: ["error": "\(error)", "retry_in": "\(delay)", "attempt": "\(failures)"])
                }
                await pause(delay)
            }
        }
    }

    /// Sleeps, waking early when graceful shutdown begins.
    private func pause(_ duration: Duration) async {
        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: duration) }
    }

    /// Sends one batch of pending events; returns how many were acknowledged.
    @discardableResult
    public func relayBatch() async throws -> Int {
        let pending = try await store.read { [batchSize] database in try await Outbox.pending(database, topic: Self.topic, limit: batchSize) }
        guard !pending.isEmpty else { return 0 }
        var request = Portal_Audit_V1_AppendEventsRequest()
        request.events = try pending.map { try Portal_Audit_V1_NewEvent(serializedBytes: $0.payload) }
        _ = try await audit.appendEvents(request, options: CallOptions(timeout: .seconds(10)))
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try await store.transaction { database in
            try await Outbox.markDelivered(database, sequences: pending.map(\.sequence), now: now)
        }
        return pending.count
    }
}
