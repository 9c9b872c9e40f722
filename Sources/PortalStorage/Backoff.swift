/// Waits that double after each consecutive failure, from `initial` up to `maximum`: the one rule
/// for retrying outbox delivery and PostgreSQL transactions.
public struct Backoff: Sendable {
    /// The wait after the first failure.
    public var initial: Duration
    /// The longest wait.
    public var maximum: Duration

    /// Waits from `initial` doubling to `maximum`.
    public init(initial: Duration, maximum: Duration) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The wait after `failures` consecutive failures (1 or more).
    public func delay(afterFailures failures: Int) -> Duration {
        min(maximum, initial * (1 << min(max(failures, 1) - 1, 30)))
    }

    /// A random wait of at least a millisecond and at most `delay(afterFailures:)`, so callers that
    /// failed together do not retry together.
    public func jitteredDelay(afterFailures failures: Int) -> Duration {
        let limit = max(1, Int64(delay(afterFailures: failures) / .milliseconds(1)))
        return .milliseconds(Int64.random(in: 1...limit))
    }
}
