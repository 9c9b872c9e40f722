import PortalRPC
import W3CTraceContext

/// Trace and span ids from xoshiro256** seeded once from the system's generator: uniformly random,
/// as sampling by trace id needs, without a system call per id (the system's generator makes one for
/// every 8 bytes, three for each span of a new trace). Ids need to be unique, not secret.
final class IDGenerator: Sendable {
    private let state: Locked<Xoshiro256StarStar>

    init() {
        var system = SystemRandomNumberGenerator()
        state = Locked(Xoshiro256StarStar(seed: (system.next(), system.next(), system.next(), system.next())))
    }

    func traceID() -> TraceID { state.withLock { TraceID.random(using: &$0) } }

    func spanID() -> SpanID { state.withLock { SpanID.random(using: &$0) } }
}

/// The xoshiro256** generator (Blackman and Vigna): 256 bits of state, 64 random bits a step.
struct Xoshiro256StarStar: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    init(seed: (UInt64, UInt64, UInt64, UInt64)) {
        // An all-zero state would only ever yield zeros.
        s = seed == (0, 0, 0, 0) ? (1, 2, 3, 4) : seed
    }

    mutating func next() -> UInt64 {
        let result = rotateLeft(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = rotateLeft(s.3, 45)
        return result
    }

    private func rotateLeft(_ value: UInt64, _ count: UInt64) -> UInt64 {
        (value << count) | (value >> (64 - count))
    }
}
