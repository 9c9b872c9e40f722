import Foundation
import Synchronization

/// The system's clocks moved forward by an offset that only grows: for running whole services in
/// tests that pass an hour of session or a minute of sign-in budget at once (`portal`'s testing
/// clock endpoint). Sleeps last their real duration.
public final class OffsetClock: ServiceClock {
    private let offset = Mutex(Duration.zero)

    /// The system's time, not yet moved.
    public init() {}

    /// How far the clock has been moved.
    public var elapsed: Duration { offset.withLock { $0 } }

    public func milliseconds() -> Int64 {
        Int64(Date().timeIntervalSince1970 * 1000) + Int64(elapsed / .milliseconds(1))
    }

    public func instant() -> ContinuousClock.Instant { .now + elapsed }

    public func sleep(for duration: Duration) async throws { try await Task.sleep(for: duration) }

    /// Moves the clock forward by `duration` (a negative one is ignored: time never runs back).
    public func advance(by duration: Duration) {
        guard duration > .zero else { return }
        offset.withLock { $0 += duration }
    }
}
