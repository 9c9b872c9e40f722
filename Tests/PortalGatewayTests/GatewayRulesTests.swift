import PortalAPI
@testable import PortalGateway
import PortalRPC
import PortalTime
import Synchronization
import Testing

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
    func next() -> Int { count.withLock { $0 += 1; return $0 } }
    var value: Int { count.withLock { $0 } }
}

@Suite("Gateway: shared dashboard reads")
struct SharedReadsTests {
    @Test func requestsArrivingDuringAReadShareTheNextOneNeverTheRunningOne() async throws {
        let reads = SharedReads<String, Int>()
        let counter = ReadCounter()
        let read: @Sendable () async throws -> Int = {
            let number = counter.next()
            try await Task.sleep(for: .milliseconds(100))
            return number
        }
        async let first = reads.value(for: "org-1", read: read)
        try await Task.sleep(for: .milliseconds(30))
        async let second = reads.value(for: "org-1", read: read)
        async let third = reads.value(for: "org-1", read: read)
        async let otherOrganization = reads.value(for: "org-2", read: read)
        let values = try await (first, second, third, otherOrganization)
        #expect(values.0 == 1)
        #expect(values.1 == values.2 && values.1 > 1)
        #expect(counter.value == 3)
        // Nothing under way any more: a new request starts a fresh read.
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
        let hanging: @Sendable () async throws -> Int = {
            try? await Task.sleep(for: .seconds(2))  // a backend that answers late, whatever happens to the callers
            return 42
        }
        let cancelled = Task { try await reads.value(for: "org-1", read: hanging) }
        let patient = Task { try await reads.value(for: "org-1", read: hanging) }
        try await Task.sleep(for: .milliseconds(50))
        let started = ContinuousClock.now
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        #expect(ContinuousClock.now - started < .milliseconds(500), "the cancelled caller waited for the read")
        #expect(try await patient.value == 42)
    }
}

@Suite("Gateway: session cache")
struct SessionCacheTests {
    static func caller(_ memberID: String, role: Portal_Identity_V1_Role = .admin) -> Caller {
        Caller(principal: .with { $0.memberID = memberID; $0.role = role }, expiresAt: nil)
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
        let counter = ReadCounter()
        let resolve: @Sendable (String) async throws -> Caller = { _ in
            _ = counter.next()
            try await Task.sleep(for: .milliseconds(100))
            return Self.caller("mem-1")
        }
        async let first = cache.caller(for: "token-1", resolve: resolve)
        try await Task.sleep(for: .milliseconds(30))
        await cache.forget(token: "token-1")  // logout while the lookup runs
        _ = try await first
        _ = try await cache.caller(for: "token-1", resolve: resolve)
        #expect(counter.value == 2)
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
