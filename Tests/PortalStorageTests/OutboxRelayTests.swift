import Foundation
import Logging
import PortalStorage
import PortalTime
import SQLKit
import ServiceLifecycle
import Synchronization
import Testing

/// What a relay's receiver saw: every batch, in order; it refuses while told to.
final class Receiver: Sendable {
    private let state = Mutex((batches: [[String]](), refusals: 0))
    let arrivals: AsyncStream<[String]>
    private let sink: AsyncStream<[String]>.Continuation

    init() {
        (arrivals, sink) = AsyncStream.makeStream()
    }

    /// Refuses the next `count` batches.
    func refuse(_ count: Int) { state.withLock { $0.refusals = count } }

    var batches: [[String]] { state.withLock { $0.batches } }

    func deliver(_ records: [Outbox.Record]) throws {
        struct Refused: Error {}
        let ids = records.map(\.eventID)
        let refused = state.withLock { state in
            if state.refusals > 0 {
                state.refusals -= 1
                return true
            }
            state.batches.append(ids)
            return false
        }
        if refused { throw Refused() }
        sink.yield(ids)
    }
}

@Suite("Outbox relay")
struct OutboxRelayTests {
    /// Runs `body` with an outbox in a fresh SQLite file and a relay of topic `t` over it, on a clock
    /// the test moves; the relay runs in a service group that is shut down afterwards.
    static func withRelay(
        scrubbing: Bool = false, _ body: @Sendable (ServiceDatabase, Receiver, ManualClock) async throws -> Void
    ) async throws {
        let directory = NSTemporaryDirectory() + "outbox-relay-test-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var logger = Logger(label: "outbox-relay-test")
        logger.logLevel = .critical
        let database = try await ServiceDatabase.open(
            path: directory + "/outbox.sqlite",
            migrations: [
                SQLMigration(version: 1, name: "outbox", statements: Outbox.schema + Outbox.traceContextColumn)
            ], logger: logger)
        let clock = ManualClock()
        let receiver = Receiver()
        var configuration = OutboxRelay.Configuration(topic: "t")
        configuration.batchSize = 2
        configuration.scrubsDelivered = scrubbing
        let relay = OutboxRelay(database: database, configuration: configuration, clock: clock, logger: logger) {
            try receiver.deliver($0)
        }
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: database), .init(service: relay)], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                try await body(database, receiver, clock)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    static func append(_ database: ServiceDatabase, _ ids: [String], topic: String = "t") async throws {
        try await database.transaction { database in
            try await Outbox.append(
                database, topic: topic,
                messages: ids.map {
                    Outbox.Message(
                        eventID: $0, organizationID: "org-1", payload: Array("payload of \($0)".utf8), createdAt: 1)
                })
        }
    }

    /// Waits until the outbox holds no undelivered message (the relay marks a batch after its delivery).
    static func drained(_ database: ServiceDatabase) async throws -> Bool {
        let giveUp = ContinuousClock.now + .seconds(10)
        while try await !undelivered(database).isEmpty {
            guard ContinuousClock.now < giveUp else { return false }
            await Task.yield()
        }
        return true
    }

    static func undelivered(_ database: ServiceDatabase) async throws -> [String] {
        try await database.read { database in
            try await database.raw("SELECT event_id FROM outbox WHERE delivered_at IS NULL ORDER BY seq").all()
                .map { try $0.decode(column: "event_id", as: String.self) }
        }
    }

    @Test func aCommitWakesTheRelayWhichDeliversInOrderAndInBatches() async throws {
        try await Self.withRelay { database, receiver, _ in
            var arrivals = receiver.arrivals.makeAsyncIterator()
            try await Self.append(database, ["a", "b", "c"])
            // No time passes on the relay's clock: the commit alone wakes it.
            #expect(await arrivals.next() == ["a", "b"])
            #expect(await arrivals.next() == ["c"])
            try await Self.append(database, ["d"])
            #expect(await arrivals.next() == ["d"])
            #expect(try await Self.drained(database))
            #expect(receiver.batches == [["a", "b"], ["c"], ["d"]], "a delivered message went out again")
        }
    }

    @Test func aMessageNoCommitAnnouncedGoesOutWithTheSweepAtTheLatest() async throws {
        try await Self.withRelay { database, receiver, clock in
            var arrivals = receiver.arrivals.makeAsyncIterator()
            try await Self.append(database, ["other"], topic: "u")
            // A message written without the relay knowing (another instance's, say) waits for the sweep.
            try await database.transaction { database in
                try await database.raw(
                    "INSERT INTO outbox (event_id, org_id, topic, payload, created_at) VALUES ('x', 'org-1', 't', X'00', 1)"
                ).run()
            }
            await clock.waitForSleepers(1)
            clock.advance(by: .seconds(5))
            #expect(await arrivals.next() == ["x"])
            #expect(receiver.batches == [["x"]])
        }
    }

    @Test func aRefusedBatchIsRetriedAfterTheBackoffAndMarkedDeliveredOnce() async throws {
        try await Self.withRelay(scrubbing: true) { database, receiver, clock in
            var arrivals = receiver.arrivals.makeAsyncIterator()
            receiver.refuse(2)
            try await Self.append(database, ["a"])
            // The sweep sleeps, and the relay sleeps its first backoff (0.2 s), then its second (0.4 s).
            await clock.waitForSleepers(2)
            #expect(try await Self.undelivered(database) == ["a"])
            clock.advance(by: .milliseconds(200))
            await clock.waitForSleepers(2)
            #expect(receiver.batches.isEmpty)
            clock.advance(by: .milliseconds(400))
            #expect(await arrivals.next() == ["a"])
            #expect(try await Self.drained(database))
            let payload = try await database.read { database in
                try await database.raw("SELECT payload FROM outbox WHERE event_id = 'a'").first()?.decode(
                    column: "payload", as: Data.self)
            }
            #expect(payload?.isEmpty == true, "a scrubbing relay keeps no payload once delivered")
        }
    }

    @Test func backoffDoublesToItsMaximum() {
        let backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(30))
        #expect(
            (1...9).map { backoff.delay(afterFailures: $0) }
                == [200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, 30_000].map { Duration.milliseconds($0) })
        #expect(backoff.delay(afterFailures: 1_000) == .seconds(30))
        #expect(
            (1...100).allSatisfy { _ in
                (.milliseconds(1)...Duration.milliseconds(800)).contains(backoff.jitteredDelay(afterFailures: 3))
            })
    }
}
