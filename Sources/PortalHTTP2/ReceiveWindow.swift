/// Receive flow control for one stream: how much of the peer's send window to reopen, and when.
///
/// Body bytes go back to the peer at once while fewer than `bufferedBytesLimit` bytes of complete
/// messages wait for the reader; beyond that they are owed until the reader takes messages. Partial
/// messages never hold the window shut, so a message larger than the window still arrives, and a
/// slow reader's memory stays bounded by this limit plus one window. A value-type state machine:
/// it decides, the connection handler sends the WINDOW_UPDATE.
struct ReceiveWindow {
    /// Complete but unread message bytes tolerated per stream.
    static let bufferedBytesLimit = 256 << 10

    /// Received bytes not yet returned to the peer.
    private(set) var owed = 0

    /// `count` body bytes arrived while `buffered` bytes wait for the reader; returns the bytes to return now.
    mutating func received(_ count: Int, buffered: Int) -> Int {
        owed += count
        return repay(buffered: buffered)
    }

    /// The reader took messages and `buffered` bytes still wait; returns the bytes to return now.
    mutating func repay(buffered: Int) -> Int {
        guard owed > 0, buffered < Self.bufferedBytesLimit else { return 0 }
        defer { owed = 0 }
        return owed
    }
}
