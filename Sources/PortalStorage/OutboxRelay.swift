import Instrumentation
import Logging
import PortalTime
import ServiceLifecycle
import Tracing

/// Delivers one topic of a database's outbox, oldest first and in batches, marking messages delivered
/// (in one statement) only after `deliver` returned, so a crash in between can only deliver a batch
/// again, never lose one: receivers deduplicate by event id.
///
/// It wakes when a transaction that appended to its topic commits, and sweeps the outbox every
/// `sweepInterval` as a safety net (messages another instance appended, a wake-up lost to a crash).
/// Failures are retried after `backoff`'s growing waits, logged on the first and every tenth. One
/// instance of a service relays a topic at a time (a lease), so messages go out once and in order.
///
/// When the process traces, a batch is delivered inside a span (`deliver <topic>`) that continues
/// the trace of its oldest message's transaction and links to every message's, so the receiver's
/// side of the delivery (the audit append) shows under the request that caused it.
public final class OutboxRelay: Service, Sendable {
    /// Hands a batch of pending messages to their receiver; throws when it did not take them.
    public typealias Deliver = @Sendable ([Outbox.Record]) async throws -> Void

    /// How a topic is relayed.
    public struct Configuration: Sendable {
        /// The outbox topic.
        public var topic: String
        /// Messages per delivery.
        public var batchSize = 500
        /// Whether delivered messages lose their payload (mail carrying secrets).
        public var scrubsDelivered = false
        /// How often the outbox is looked at without a wake-up.
        public var sweepInterval: Duration = .seconds(5)
        /// How soon to try again when another instance holds the lease (it is delivering).
        public var leaseRetry: Duration = .milliseconds(200)
        /// Waits after consecutive failures.
        public var backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(30))

        /// The defaults, for `topic`.
        public init(topic: String) {
            self.topic = topic
        }
    }

    private let database: ServiceDatabase
    private let configuration: Configuration
    private let clock: any ServiceClock
    private let logger: Logger
    private let deliver: Deliver
    private let wakeUps: AsyncStream<Void>
    private let wakeUpSink: AsyncStream<Void>.Continuation

    /// A relay of `database`'s outbox; `deliver` hands each batch over.
    public init(
        database: ServiceDatabase, configuration: Configuration, clock: any ServiceClock = .system, logger: Logger,
        deliver: @escaping Deliver
    ) {
        self.database = database
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        self.deliver = deliver
        (wakeUps, wakeUpSink) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        wakeUpSink.yield()  // what waits from before the start goes out at once
        database.onOutboxCommit(topic: configuration.topic) { [wakeUpSink] in wakeUpSink.yield() }
    }

    /// Asks the relay to look at the outbox now.
    public func wakeUp() {
        wakeUpSink.yield()
    }

    /// Relays until graceful shutdown.
    public func run() async throws {
        let (clock, sweepInterval, wakeUpSink) = (clock, configuration.sweepInterval, wakeUpSink)
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    while await Self.pause(sweepInterval, on: clock) { wakeUpSink.yield() }
                }
                for await _ in wakeUps {
                    guard await drain() else { break }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            wakeUpSink.finish()
        }
    }

    /// Delivers batches until the topic has no pending message; false once shutdown began.
    private func drain() async -> Bool {
        let gauges = OutboxGauges(topic: configuration.topic)
        var failures = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                guard
                    let sent = try await database.withLease(
                        "outbox-relay:" + configuration.topic, { try await self.relayBatch() })
                else {
                    guard await Self.pause(configuration.leaseRetry, on: clock) else { return false }
                    continue
                }
                if sent < configuration.batchSize {
                    gauges.recordDrained()
                    return true
                }
                failures = 0
                try? await gauges.record(database, now: clock.milliseconds())
            } catch {
                failures += 1
                let delay = configuration.backoff.delay(afterFailures: failures)
                try? await gauges.record(database, now: clock.milliseconds())
                if failures == 1 || failures % 10 == 0 {
                    logger.warning(
                        "outbox delivery failed; retrying",
                        metadata: [
                            "topic": "\(configuration.topic)", "error": "\(error)", "retry_in": "\(delay)",
                            "attempt": "\(failures)",
                        ])
                }
                guard await Self.pause(delay, on: clock) else { return false }
            }
        }
        return false
    }

    /// Sends one batch of pending messages; returns how many were delivered.
    @discardableResult
    public func relayBatch() async throws -> Int {
        let (topic, limit) = (configuration.topic, configuration.batchSize)
        let pending = try await database.read { database in
            try await Outbox.pending(database, topic: topic, limit: limit)
        }
        guard !pending.isEmpty else { return 0 }
        try await deliverTraced(pending)
        let (now, scrub) = (clock.milliseconds(), configuration.scrubsDelivered)
        try await database.transaction { database in
            try await Outbox.markDelivered(database, sequences: pending.map(\.sequence), now: now, scrubPayload: scrub)
        }
        return pending.count
    }

    /// Hands `pending` to `deliver`, inside a span linked to the messages' traces when they have any.
    private func deliverTraced(_ pending: [Outbox.Record]) async throws {
        let traces = database.isTraced ? pending.compactMap { $0.traceParent.map(Self.context(of:)) } : []
        guard let oldest = traces.first else { return try await deliver(pending) }
        let (topic, deliver) = (configuration.topic, deliver)
        try await withSpan("deliver \(topic)", context: oldest, ofKind: .producer) { span in
            span.attributes["messaging.destination.name"] = topic
            span.attributes["messaging.batch.message_count"] = pending.count
            for trace in traces { span.addLink(SpanLink(context: trace, attributes: [:])) }
            try await deliver(pending)
        }
    }

    /// The trace a message's `traceparent` names.
    private static func context(of traceParent: String) -> ServiceContext {
        var context = ServiceContext.topLevel
        InstrumentationSystem.instrument.extract(
            ["traceparent": traceParent], into: &context, using: HeaderDictionary())
        return context
    }

    /// Waits `duration` on `clock`, ending early at graceful shutdown or cancellation; false then.
    private static func pause(_ duration: Duration, on clock: any ServiceClock) async -> Bool {
        try? await cancelWhenGracefulShutdown { try await clock.sleep(for: duration) }
        return !Task.isShuttingDownGracefully && !Task.isCancelled
    }
}
