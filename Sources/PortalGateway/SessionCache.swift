import Foundation
import PortalCrypto
import PortalRPC
import PortalTime

/// Remembers which caller a bearer token stands for, for at most `lifetime` (one second by default),
/// so a busy portal does not ask identity on every call while deleting a member or changing a role
/// still bites within that second.
///
/// Tokens are held only as SHA-256 digests. Concurrent lookups of one token share a single request
/// to identity; refusals are never remembered.
actor SessionCache {
    private struct Entry {
        let caller: Caller
        let fetchedAt: ContinuousClock.Instant
    }

    private let lifetime: Duration
    private let capacity: Int
    private var entries: [[UInt8]: Entry] = [:]
    private var inFlight: [[UInt8]: Task<Caller, any Error>] = [:]
    /// When tokens and members were last forgotten: a lookup that started before must not be remembered.
    private var forgottenTokens: [[UInt8]: ContinuousClock.Instant] = [:]
    private var forgottenMembers: [String: ContinuousClock.Instant] = [:]
    /// The time; tests move it instead of sleeping.
    private let clock: any ServiceClock

    init(lifetime: Duration = .seconds(1), capacity: Int = 100_000, clock: any ServiceClock = .system) {
        self.lifetime = lifetime
        self.capacity = capacity
        self.clock = clock
    }

    /// The caller `token` stands for: remembered, or resolved with `resolve` now.
    func caller(for token: String, resolve: @escaping @Sendable (String) async throws -> Caller) async throws -> Caller
    {
        let key = SecretHashing.sha256(token)
        let now = clock.instant()
        if let entry = entries[key], now - entry.fetchedAt < lifetime { return entry.caller }
        if let pending = inFlight[key] { return try await pending.value }
        let lookup = Task { try await resolve(token) }
        inFlight[key] = lookup
        do {
            let caller = try await lookup.value
            inFlight[key] = nil
            if !forgotten(key: key, memberID: caller.principal.memberID, since: now) {
                remember(caller, key: key, at: now)
            }
            return caller
        } catch {
            inFlight[key] = nil
            entries[key] = nil
            throw error
        }
    }

    /// Forgets the token at once (logout), including a lookup of it under way.
    func forget(token: String) {
        let key = SecretHashing.sha256(token)
        entries[key] = nil
        forgottenTokens[key] = clock.instant()
        inFlight[key] = nil
    }

    /// Forgets every token of a member at once (deleted, or role changed through this gateway),
    /// including lookups under way.
    func forget(memberID: String) {
        entries = entries.filter { $0.value.caller.principal.memberID != memberID }
        forgottenMembers[memberID] = clock.instant()
        inFlight.removeAll()
    }

    /// Whether the token or member was forgotten after a lookup that started at `start`; drops
    /// records older than any lookup still running could be.
    private func forgotten(key: [UInt8], memberID: String, since start: ContinuousClock.Instant) -> Bool {
        let horizon = clock.instant() - BackendCall.defaultTimeout - lifetime
        forgottenTokens = forgottenTokens.filter { $0.value > horizon }
        forgottenMembers = forgottenMembers.filter { $0.value > horizon }
        return (forgottenTokens[key].map { $0 >= start } ?? false)
            || (forgottenMembers[memberID].map { $0 >= start } ?? false)
    }

    private func remember(_ caller: Caller, key: [UInt8], at now: ContinuousClock.Instant) {
        if entries.count >= capacity {
            entries = entries.filter { now - $0.value.fetchedAt < lifetime }
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
        }
        entries[key] = Entry(caller: caller, fetchedAt: now)
    }
}
