import Synchronization

/// A clock that stands still until `advance(by:)` moves it: sleepers wake when the time they wait
/// for is reached, in order. Tests use it to pass a day or an hour of backoff at once.
public final class ManualClock: ServiceClock {
    private struct Sleeper {
        let id: UInt64
        let deadline: Duration
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var elapsed: Duration = .zero
        var sleepers: [Sleeper] = []
        var nextID: UInt64 = 0
        var cancelled: Set<UInt64> = []
    }

    private let startMilliseconds: Int64
    private let startInstant = ContinuousClock.now
    private let state = Mutex(State())

    /// A clock reading `milliseconds` since the Unix epoch until it is moved.
    public init(milliseconds: Int64 = 1_767_225_600_000) {
        startMilliseconds = milliseconds
    }

    /// How far the clock has been moved.
    public var elapsed: Duration { state.withLock { $0.elapsed } }

    /// How many tasks are waiting on the clock now.
    public var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    public func milliseconds() -> Int64 {
        startMilliseconds + Int64(elapsed / .milliseconds(1))
    }

    public func instant() -> ContinuousClock.Instant { startInstant + elapsed }

    public func sleep(for duration: Duration) async throws {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome: Result<Void, any Error>? = state.withLock { state in
                    if state.cancelled.remove(id) != nil { return .failure(CancellationError()) }
                    if duration <= .zero { return .success(()) }
                    state.sleepers.append(
                        Sleeper(id: id, deadline: state.elapsed + duration, continuation: continuation))
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let sleeper = state.withLock { state -> Sleeper? in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else {
                    state.cancelled.insert(id)  // not asleep yet: refuse the sleep when it starts
                    return nil
                }
                return state.sleepers.remove(at: index)
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
        state.withLock { _ = $0.cancelled.remove(id) }
    }

    /// Moves the clock forward, waking every sleeper whose time has come, earliest first.
    public func advance(by duration: Duration) {
        let woken = state.withLock { state -> [Sleeper] in
            state.elapsed += duration
            let due = state.sleepers.filter { $0.deadline <= state.elapsed }.sorted { $0.deadline < $1.deadline }
            state.sleepers.removeAll { $0.deadline <= state.elapsed }
            return due
        }
        for sleeper in woken { sleeper.continuation.resume() }
    }

    /// Waits (in real time, yielding) until at least `count` tasks sleep on the clock, so a test
    /// moves time only once a component waits on it.
    public func waitForSleepers(_ count: Int = 1) async {
        while sleeperCount < count { try? await Task.sleep(for: .milliseconds(1)) }
    }
}
