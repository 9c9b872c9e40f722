import Foundation
import Synchronization

/// The system's clocks moved forward by an offset that only grows: for running whole services in
/// tests that pass an hour of session, a minute of sign-in budget or days before an expiry at once
/// (`portal`'s testing clock endpoint). A sleep ends when its time has passed on this clock: after
/// its real duration, or earlier when the clock is moved past its end.
public final class OffsetClock: ServiceClock {
    private struct State {
        var offset = Duration.zero
        var nextSleeper = 0
        var sleepers: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    /// The system's time, not yet moved.
    public init() {}

    /// How far the clock has been moved.
    public var elapsed: Duration { state.withLock { $0.offset } }

    public func milliseconds() -> Int64 {
        Int64(Date().timeIntervalSince1970 * 1000) + Int64(elapsed / .milliseconds(1))
    }

    public func instant() -> ContinuousClock.Instant { .now + elapsed }

    public func sleep(for duration: Duration) async throws {
        let end = instant() + duration
        while true {
            let (now, offset) = state.withLock { (ContinuousClock.now + $0.offset, $0.offset) }
            guard now < end else { break }
            try Task.checkCancellation()
            await sleepUntilMovedOrElapsed(end - now, movedFrom: offset)
        }
        try Task.checkCancellation()
    }

    /// Moves the clock forward by `duration` (a negative one is ignored: time never runs back), waking
    /// the sleeps it passes.
    public func advance(by duration: Duration) {
        guard duration > .zero else { return }
        let woken = state.withLock { state in
            state.offset += duration
            defer { state.sleepers = [:] }
            return state.sleepers
        }
        for sleeper in woken.values { sleeper.resume() }
    }

    /// Returns after `duration` of real time, when the clock is moved from `offset` (also before this
    /// call registered), or when the task is cancelled.
    private func sleepUntilMovedOrElapsed(_ duration: Duration, movedFrom offset: Duration) async {
        let id = state.withLock { state in
            state.nextSleeper += 1
            return state.nextSleeper
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let resumeNow = self.state.withLock { state in
                            if Task.isCancelled || state.offset != offset { return true }
                            state.sleepers[id] = continuation
                            return false
                        }
                        if resumeNow { continuation.resume() }
                    }
                } onCancel: {
                    self.state.withLock { $0.sleepers.removeValue(forKey: id) }?.resume()
                }
            }
            group.addTask { try? await Task.sleep(for: duration) }
            await group.next()
            group.cancelAll()
        }
    }
}
