import Synchronization

/// Where an organization's chain ends: its last sequence and hash (zero and 32 zero bytes before its
/// first event).
struct ChainHead: Equatable, Sendable {
    let sequence: Int64
    let hash: [UInt8]

    static let empty = ChainHead(sequence: 0, hash: [UInt8](repeating: 0, count: 32))
}

/// This instance's PostgreSQL appends in flight, per organization, so one organization's batches
/// overlap instead of taking turns for their whole length: a batch is chained after the batch still
/// committing before it (known here, not yet stored) and inserted meanwhile. It takes its
/// organizations' chain keys only once the batches before it committed, and then checks that the
/// stored heads are the ones it chained after; any other outcome rolls it back and it is appended
/// again (see `AuditStore.append`). Batches commit in their order, so an organization's events still
/// become visible in sequence order.
final class ChainPipeline: Sendable {
    /// Batches of one organization in flight at once: one committing, one inserting behind it.
    static let depth = 2
    /// How long a batch waits for the ones before it to commit before giving up its place (a batch
    /// commits in well under a second; this only breaks a wait that another instance's append holds up).
    static let patience = Duration.seconds(2)

    /// How long an organization's batches hold its chain from the start once a chained batch of it
    /// had to start over because another instance appended to it: instances appending to one
    /// organization at once would otherwise keep undoing each other's chained batches.
    static let contentionWindow = Duration.seconds(10)

    /// One batch's place in the pipelines of its organizations, from `admit` to `leave`.
    final class Place: Sendable {
        fileprivate let organizationIDs: Set<String>
        fileprivate let outcome = BatchOutcome()
        private let linked = Atomic<Bool>(false)

        fileprivate init(organizationIDs: Set<String>) {
            self.organizationIDs = organizationIDs
        }

        /// True the first time only: a batch is chained once per place.
        fileprivate func link() -> Bool {
            !linked.exchange(true, ordering: .relaxed)
        }
    }

    /// A batch chained into the pipelines: the heads it followed and the batches it must see committed.
    struct Chained<Links: Sendable>: Sendable {
        let links: Links
        let bases: [String: ChainHead]
        fileprivate let before: [BatchOutcome]

        /// Whether every batch this one was chained after committed (false once one failed or
        /// `patience` passed).
        func predecessorsCommitted() async -> Bool {
            for outcome in before where await !outcome.committed(within: ChainPipeline.patience) { return false }
            return true
        }
    }

    private struct Organization {
        var inFlight = 0
        /// The end of the last batch chained, and the batch it was chained after (if in this pipeline).
        var tail: (head: ChainHead, outcome: BatchOutcome, follows: BatchOutcome?)?
    }

    private struct State {
        var organizations: [String: Organization] = [:]
        /// Organizations other instances append to as well, until when.
        var contended: [String: ContinuousClock.Instant] = [:]
        var waiting: [CheckedContinuation<Bool, Never>] = []
    }

    private let state = Mutex(State())

    /// A place for a batch of `organizationIDs` once each has fewer than `depth` batches in flight.
    func admit(_ organizationIDs: Set<String>) async -> Place {
        while true {
            let admitted = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let admitted = state.withLock { state -> Bool in
                    if organizationIDs.contains(where: { (state.organizations[$0]?.inFlight ?? 0) >= Self.depth }) {
                        state.waiting.append(continuation)  // resumed with false when a place is left
                        return false
                    }
                    for id in organizationIDs { state.organizations[id, default: Organization()].inFlight += 1 }
                    return true
                }
                if admitted { continuation.resume(returning: true) }
            }
            if admitted { return Place(organizationIDs: organizationIDs) }
        }
    }

    /// Notes that a chained batch of these organizations started over because their chains moved
    /// elsewhere: for `contentionWindow` their batches hold the chains from the start.
    func contended(_ organizationIDs: Set<String>) {
        let until = ContinuousClock.now + Self.contentionWindow
        state.withLock { state in
            for id in organizationIDs { state.contended[id] = until }
        }
    }

    /// Whether a batch of these organizations should hold their chains from the start rather than be chained.
    func isContended(_ organizationIDs: Set<String>) -> Bool {
        let now = ContinuousClock.now
        return state.withLock { state in
            state.contended = state.contended.filter { $0.value > now }
            return organizationIDs.contains { state.contended[$0] != nil }
        }
    }

    /// Chains a batch after its organizations' batches in flight, or after `stored` heads where none
    /// is (an organization in neither starts empty): `link` computes the batch's links and returns
    /// them with its organizations' heads after it, which the next batches then follow. Nil when the
    /// place was chained before (a transaction run again): the batch must start over.
    func chain<Links: Sendable>(
        _ place: Place, stored: [String: ChainHead],
        _ link: ([String: ChainHead]) -> (links: Links, heads: [String: ChainHead])
    ) -> Chained<Links>? {
        guard place.link() else { return nil }
        return state.withLock { state in
            var bases: [String: ChainHead] = [:]
            var before: [String: BatchOutcome] = [:]
            for id in place.organizationIDs {
                if let tail = state.organizations[id]?.tail {
                    bases[id] = tail.head
                    before[id] = tail.outcome
                } else {
                    bases[id] = stored[id] ?? .empty
                }
            }
            let (links, heads) = link(bases)
            for (id, head) in heads {
                state.organizations[id, default: Organization()].tail = (head, place.outcome, before[id])
            }
            return Chained(links: links, bases: bases, before: Array(before.values))
        }
    }

    /// Ends a place: the batch committed or not; the next batches may go on. A committed batch's end
    /// stays the tail while its organization has batches in flight (one admitted meanwhile may have read
    /// the stored heads before it committed); a failed batch takes the tail with it — its own, or that of
    /// the batch chained after it, which fails too — so the next ones follow the stored heads.
    func leave(_ place: Place, committed: Bool) {
        place.outcome.resolve(committed: committed)
        let waiting = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            for id in place.organizationIDs {
                guard var organization = state.organizations[id] else { continue }
                organization.inFlight -= 1
                if !committed, let tail = organization.tail,
                    tail.outcome === place.outcome || tail.follows === place.outcome
                {
                    organization.tail = nil
                }
                state.organizations[id] = organization.inFlight == 0 ? nil : organization
            }
            defer { state.waiting.removeAll() }
            return state.waiting
        }
        for continuation in waiting { continuation.resume(returning: false) }
    }
}

/// Whether a batch in flight committed, once it is known.
final class BatchOutcome: Sendable {
    private struct State {
        var committed: Bool?
        var waiting: [Int: CheckedContinuation<Bool, Never>] = [:]
        var nextID = 0
    }

    private let state = Mutex(State())

    /// Records the outcome and wakes those waiting for it.
    func resolve(committed: Bool) {
        let waiting = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            guard state.committed == nil else { return [] }
            state.committed = committed
            defer { state.waiting.removeAll() }
            return Array(state.waiting.values)
        }
        for continuation in waiting { continuation.resume(returning: committed) }
    }

    /// True once the batch committed; false when it did not, or is still undecided after `timeout`.
    func committed(within timeout: Duration) async -> Bool {
        await withTaskGroup(of: Bool?.self) { group in
            group.addTask { await self.outcome() as Bool? }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? false
        }
    }

    /// The outcome; false when the waiting task is cancelled first.
    private func outcome() async -> Bool {
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let known = state.withLock { state -> Bool? in
                    if let committed = state.committed { return committed }
                    if Task.isCancelled { return false }
                    state.waiting[id] = continuation
                    return nil
                }
                if let known { continuation.resume(returning: known) }
            }
        } onCancel: {
            state.withLock { $0.waiting.removeValue(forKey: id) }?.resume(returning: false)
        }
    }
}
