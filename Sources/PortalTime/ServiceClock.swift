import Foundation

/// The time a service's components read and wait on: the system's, or a test's that moves only when
/// told, so tests move time instead of sleeping.
public protocol ServiceClock: Sendable {
    /// The wall-clock time in milliseconds since the Unix epoch, as records store it.
    func milliseconds() -> Int64
    /// A monotonic reading, for intervals (budgets, caches, backoff).
    func instant() -> ContinuousClock.Instant
    /// Waits `duration` of this clock's time; throws `CancellationError` when the task is cancelled.
    func sleep(for duration: Duration) async throws
}

/// The system's clocks: the wall clock for records, the continuous clock for intervals and waits.
public struct SystemClock: ServiceClock {
    /// The system clock.
    public init() {}

    public func milliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    public func instant() -> ContinuousClock.Instant { .now }

    public func sleep(for duration: Duration) async throws { try await Task.sleep(for: duration) }
}

extension ServiceClock where Self == SystemClock {
    /// The system's clocks.
    public static var system: SystemClock { SystemClock() }
}
