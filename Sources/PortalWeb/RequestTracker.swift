import PortalRPC

/// Counts a web listener's requests in progress, so shutdown can wait for them.
final class RequestTracker: Sendable {
    private struct State {
        var inFlight = 0
        var shuttingDown = false
        var whenIdle: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Locked(State())

    /// Whether shutdown has begun (responses then close their connections).
    var isShuttingDown: Bool { state.withLock { $0.shuttingDown } }

    /// A request started.
    func began() { state.withLock { $0.inFlight += 1 } }

    /// A request ended.
    func ended() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.inFlight -= 1
            guard state.inFlight == 0 else { return [] }
            defer { state.whenIdle = [] }
            return state.whenIdle
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Marks shutdown and returns once no request is in progress.
    func shutDownWhenIdle() async {
        await withCheckedContinuation { continuation in
            let idle = state.withLock { state -> Bool in
                state.shuttingDown = true
                if state.inFlight == 0 { return true }
                state.whenIdle.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }
}
