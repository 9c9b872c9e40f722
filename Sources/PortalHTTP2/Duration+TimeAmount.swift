import NIOCore

extension Duration {
    /// The duration as a NIO time amount, clamped to zero and to about 290 years so it cannot overflow.
    var timeAmount: TimeAmount {
        let (seconds, attoseconds) = components
        guard seconds >= 0 else { return .zero }
        guard seconds < 9_000_000_000 else { return .nanoseconds(9_000_000_000 * 1_000_000_000) }
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
