import PortalRPC
import PortalTime
import Synchronization

/// Limits failed logins per account and per source address, so passwords cannot be guessed quickly.
///
/// Each key has a budget of `burst` failures that refills at `refillPerMinute`; a key out of budget
/// is refused before its password is checked. Unknown accounts spend budget exactly like known ones,
/// so the answers reveal nothing about which emails exist.
final class LoginRateLimiter: Sendable {
    private struct Budget {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private let burst: Double
    private let refillPerSecond: Double
    private let budgets = Locked<[String: Budget]>([:])
    private let clock: any ServiceClock

    init(burst: Int = 10, refillPerMinute: Double = 5, clock: any ServiceClock) {
        self.burst = Double(burst)
        refillPerSecond = refillPerMinute / 60
        self.clock = clock
    }

    /// Whether every key still has budget for one more attempt.
    func allows(_ keys: [String]) -> Bool {
        let now = clock.instant()
        return budgets.withLock { budgets in
            keys.allSatisfy { key in current(budgets[key], now: now).tokens >= 1 }
        }
    }

    /// Records a failed attempt against every key.
    func recordFailure(_ keys: [String]) {
        let now = clock.instant()
        budgets.withLock { budgets in
            if budgets.count > 100_000 { budgets = budgets.filter { current($0.value, now: now).tokens < burst } }
            for key in keys {
                var budget = current(budgets[key], now: now)
                budget.tokens = max(0, budget.tokens - 1)
                budgets[key] = budget
            }
        }
    }

    private func current(_ budget: Budget?, now: ContinuousClock.Instant) -> Budget {
        guard let budget else { return Budget(tokens: burst, updated: now) }
        let (seconds, attoseconds) = (now - budget.updated).components
        let elapsed = Double(seconds) + Double(attoseconds) / 1e18
        return Budget(tokens: min(burst, budget.tokens + elapsed * refillPerSecond), updated: now)
    }
}
