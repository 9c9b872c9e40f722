/// Receive flow control: how far a reader may fall behind before the peer is made to wait.
///
/// Body bytes go back to the peer's stream window at once while fewer than `bufferedBytesLimit`
/// bytes of complete messages wait for the reader; beyond that the window stays closed until the
/// reader takes messages. Partial messages never hold the window shut, so a message larger than
/// the window still arrives, and a slow reader's memory stays bounded by this limit plus one window.
enum ReceiveWindow {
    /// Complete but unread message bytes tolerated per stream.
    static let bufferedBytesLimit = 256 << 10
}
