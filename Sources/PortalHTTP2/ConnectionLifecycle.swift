/// The life of one HTTP/2 connection, decided apart from I/O: events in, one action out.
///
/// `active` → `quiescing` (a GOAWAY announcing shutdown and a PING are out) → `closing` (the final
/// GOAWAY naming the last stream is out, once the PING came back or timed out, so a request the peer
/// sent before it saw the notice is still served) → `closed` once no stream is open. A peer's GOAWAY,
/// a rapid-reset flood or a protocol error short-cut the sequence.
struct ConnectionLifecycle {
    /// Where the connection is.
    enum State: Equatable {
        /// Serving streams.
        case active
        /// The shutdown notice and a PING are out; new streams are still served.
        case quiescing
        /// The final GOAWAY is out (or the peer's came in): open streams finish, then the connection closes.
        case closing
        /// Done: the connection closes once its last frames are written.
        case closed
    }

    /// What the connection must do after an event.
    enum Action: Equatable {
        /// Nothing.
        case none
        /// Send a GOAWAY announcing shutdown and a PING, and time the PING out.
        case announceShutdown
        /// Send the final GOAWAY with `errorCode`; streams in flight go on.
        case goAway(errorCode: UInt32)
        /// Send the final GOAWAY with `errorCode`, then close once it is written.
        case goAwayAndClose(errorCode: UInt32)
        /// Close once what is queued is written.
        case close
    }

    /// HTTP/2's ENHANCE_YOUR_CALM, the answer to a rapid-reset flood.
    static let enhanceYourCalm: UInt32 = 11

    private(set) var state = State.active
    private var resetBudget: TokenBucket

    /// A connection allowing `resetBurst` peer resets at once and `resetRate` per second after that.
    init(resetBurst: UInt64, resetRate: UInt64, now: ContinuousClock.Instant = .now) {
        resetBudget = TokenBucket(capacity: Double(resetBurst), perSecond: Double(resetRate), now: now)
    }

    /// Whether a stream the peer opens now is served (false: refuse it, the final GOAWAY is out).
    var acceptsStreams: Bool {
        state == .active || state == .quiescing
    }

    /// A stream ended; `openStreams` are still in progress.
    mutating func streamEnded(openStreams: Int) -> Action {
        closeIfIdle(openStreams: openStreams)
    }

    /// Graceful shutdown begins (the server is stopping).
    mutating func beginGracefulShutdown() -> Action {
        guard state == .active else { return .none }
        state = .quiescing
        return .announceShutdown
    }

    /// The peer answered the shutdown PING (or it timed out): the final GOAWAY goes out.
    mutating func shutdownPingAnswered(openStreams: Int) -> Action {
        guard state == .quiescing else { return .none }
        if openStreams == 0 {
            state = .closed
            return .goAwayAndClose(errorCode: 0)
        }
        state = .closing
        return .goAway(errorCode: 0)
    }

    /// The peer sent GOAWAY: it opens no more streams; those open finish.
    mutating func peerWentAway(openStreams: Int) -> Action {
        guard state != .closed else { return .none }
        state = .closing
        return closeIfIdle(openStreams: openStreams)
    }

    /// The peer reset a stream; a flood beyond the budget ends the connection with ENHANCE_YOUR_CALM.
    mutating func peerReset(now: ContinuousClock.Instant) -> Action {
        guard !resetBudget.take(now: now), state != .closed else { return .none }
        state = .closed
        return .goAwayAndClose(errorCode: Self.enhanceYourCalm)
    }

    /// The peer broke the protocol (nghttp2 has queued its GOAWAY): close once that is written.
    mutating func protocolError() -> Action {
        guard state != .closed else { return .none }
        state = .closed
        return .close
    }

    private mutating func closeIfIdle(openStreams: Int) -> Action {
        guard state == .closing, openStreams == 0 else { return .none }
        state = .closed
        return .close
    }
}

/// A token bucket: `capacity` events at once, refilled at `perSecond`.
struct TokenBucket {
    private let capacity: Double
    private let perSecond: Double
    private var tokens: Double
    private var last: ContinuousClock.Instant

    init(capacity: Double, perSecond: Double, now: ContinuousClock.Instant = .now) {
        self.capacity = capacity
        self.perSecond = perSecond
        tokens = capacity
        last = now
    }

    /// Takes one token; false when the bucket is empty.
    mutating func take(now: ContinuousClock.Instant) -> Bool {
        let (seconds, attoseconds) = (now - last).components
        tokens = min(capacity, tokens + (Double(seconds) + Double(attoseconds) / 1e18) * perSecond)
        last = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
