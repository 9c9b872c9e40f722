import PortalAPI
import PortalRPC
import PortalTime
import Synchronization
import Testing

@testable import PortalGateway

@Suite("Gateway: the role table")
struct RoleTableTests {
    @Test func adminsMayDoEverythingAndViewersOnlyView() {
        let everything: [Capability] = [.viewPortal, .seeMemberCount, .activate, .exportCSV, .manageMembers]
        #expect(everything.allSatisfy { RoleTable.allows(.admin, $0) })
        #expect(everything.filter { RoleTable.allows(.viewer, $0) } == [.viewPortal])
        #expect(everything.allSatisfy { !RoleTable.allows(.unspecified, $0) })
    }

    @Test func aRefusalIsPermissionDeniedAndSaysWhatTheRoleCannotDo() {
        let viewer = Caller(principal: .with { $0.role = .viewer }, expiresAt: nil)
        let error = #expect(throws: RPCError.self) { try RoleTable.require(.exportCSV, of: viewer) }
        #expect(error?.code == .permissionDenied)
        #expect(error?.message.contains("Viewer role cannot export CSV files") == true)
    }
}

/// Counts how often a read ran.
final class ReadCounter: Sendable {
    private let count = Mutex(0)
    func next() -> Int {
        count.withLock {
            $0 += 1
            return $0
        }
    }
    var value: Int { count.withLock { $0 } }
}

/// Reads numbered in the order they start, each finishing only when the test releases it.
final class HeldReads: Sendable {
    let counter = ReadCounter()
    /// The number of each read as it starts.
    let started: AsyncStream<Int>
    private let startedSink: AsyncStream<Int>.Continuation
    private let gates = Mutex((released: Set<Int>(), waiting: [Int: CheckedContinuation<Void, Never>]()))

    init() {
        (started, startedSink) = AsyncStream.makeStream()
    }

    /// Starts a read and waits until it is released; returns its number.
    func read() async -> Int {
        let number = counter.next()
        startedSink.yield(number)
        await withCheckedContinuation { continuation in
            let go = gates.withLock { gates in
                if gates.released.contains(number) { return true }
                gates.waiting[number] = continuation
                return false
            }
            if go { continuation.resume() }
        }
        return number
    }

    /// Lets read `number` finish.
    func release(_ number: Int) {
        let continuation = gates.withLock { gates in
            gates.released.insert(number)
            return gates.waiting.removeValue(forKey: number)
        }
        continuation?.resume()
    }
}

/// Waits (yielding) until `condition` holds.
func until(_ condition: () async -> Bool) async {
    while await !condition() { await Task.yield() }
}

@Suite("Gateway: shared dashboard reads")
struct SharedReadsTests {
    @Test func requestsArrivingDuringAReadShareTheNextOneNeverTheRunningOne() async throws {
        let reads = SharedReads<String, Int>()
        let held = HeldReads()
        let read: @Sendable () async throws -> Int = { await held.read() }
        var started = held.started.makeAsyncIterator()
        async let first = reads.value(for: "org-1", read: read)
        #expect(await started.next() == 1)
        async let second = reads.value(for: "org-1", read: read)
        async let third = reads.value(for: "org-1", read: read)
        await until { await reads.waitingCount(for: "org-1") == 3 }
        async let otherOrganization = reads.value(for: "org-2", read: read)
        #expect(await started.next() == 2)
        held.release(1)
        #expect(await started.next() == 3, "the requests that arrived during read 1 share one read after it")
        held.release(2)
        held.release(3)
        let values = try await (first, second, third, otherOrganization)
        #expect(values.0 == 1)
        #expect(values.1 == values.2 && values.1 > 1)
        #expect(held.counter.value == 3)
        // Nothing under way any more: a new request starts a fresh read.
        held.release(4)
        #expect(try await reads.value(for: "org-1", read: read) == 4)
    }

    @Test func aFailedReadFailsItsWaitersAndIsNotReused() async throws {
        struct Broken: Error {}
        let reads = SharedReads<String, Int>()
        await #expect(throws: Broken.self) { try await reads.value(for: "org-1") { throw Broken() } }
        #expect(try await reads.value(for: "org-1") { 7 } == 7)
    }

    @Test func aCancelledWaiterStopsWaitingWhileTheReadGoesOnForTheOthers() async throws {
        let reads = SharedReads<String, Int>()
        let held = HeldReads()  // a backend that answers only when the test lets it
        let hanging: @Sendable () async throws -> Int = {
            _ = await held.read()
            return 42
        }
        let cancelled = Task { try await reads.value(for: "org-1", read: hanging) }
        await until { await reads.waitingCount(for: "org-1") == 1 }
        let patient = Task { try await reads.value(for: "org-1", read: hanging) }
        await until { await reads.waitingCount(for: "org-1") == 2 }
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        #expect(held.counter.value == 1, "the read goes on")
        held.release(1)  // the patient caller arrived during read 1: it is served by the read after it
        held.release(2)
        #expect(try await patient.value == 42)
    }
}

@Suite("Gateway: session cache")
struct SessionCacheTests {
    static func caller(_ memberID: String, role: Portal_Identity_V1_Role = .admin) -> Caller {
        Caller(
            principal: .with {
                $0.memberID = memberID
                $0.role = role
            }, expiresAt: nil)
    }

    @Test func aTokenIsResolvedAgainOnceItsLifetimeHasPassed() async throws {
        // The cache reads a clock the test moves, so a busy machine cannot stretch the second.
        let clock = ManualClock()
        let cache = SessionCache(lifetime: .seconds(1), clock: clock)
        let counter = ReadCounter()
        let resolve: @Sendable (String) async throws -> Caller = { _ in
            _ = counter.next()
            return Self.caller("mem-1")
        }
        _ = try await cache.caller(for: "token-1", resolve: resolve)
        clock.advance(by: .milliseconds(999))
        _ = try await cache.caller(for: "token-1", resolve: resolve)
        #expect(counter.value == 1)
        clock.advance(by: .milliseconds(1))
        _ = try await cache.caller(for: "token-1", resolve: resolve)
        #expect(counter.value == 2)
        await cache.forget(memberID: "mem-1")
        _ = try await cache.caller(for: "token-1", resolve: resolve)
        #expect(counter.value == 3)
    }

    @Test func aLookupUnderWayWhenTheTokenIsForgottenIsNotRemembered() async throws {
        let cache = SessionCache()
        let held = HeldReads()
        let resolve: @Sendable (String) async throws -> Caller = { _ in
            _ = await held.read()
            return Self.caller("mem-1")
        }
        var started = held.started.makeAsyncIterator()
        async let first = cache.caller(for: "token-1", resolve: resolve)
        #expect(await started.next() == 1)
        await cache.forget(token: "token-1")  // logout while the lookup runs
        held.release(1)
        _ = try await first
        held.release(2)
        _ = try await cache.caller(for: "token-1", resolve: resolve)
        #expect(held.counter.value == 2)
    }

    @Test func refusalsAreNeverRemembered() async throws {
        let cache = SessionCache()
        await #expect(throws: RPCError.self) {
            try await cache.caller(for: "token-1") { _ in throw RPCError(.unauthenticated, "session ended") }
        }
        let caller = try await cache.caller(for: "token-1") { _ in Self.caller("mem-2", role: .viewer) }
        #expect(caller.principal.memberID == "mem-2")
    }
}
