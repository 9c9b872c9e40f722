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

/// The receiving half client and server streams share: DATA bytes become messages for the reader,
/// and the peer's window reopens as the reader keeps up. Used on the connection's event loop only.
protocol MessageReceiver: AnyObject {
    /// Splits DATA bytes into messages.
    var deframer: GRPCMessageDeframer { get set }
    /// Whole messages waiting for the reader.
    var inbound: InboundMessageQueue { get }
    /// What of the peer's send window the stream still owes it.
    var receiveWindow: ReceiveWindow { get set }
}

extension MessageReceiver {
    /// Deframes `bytes` and queues the whole messages; returns how many bytes of window to reopen now.
    func receive(_ bytes: UnsafeRawBufferPointer) throws(GRPCMessageDeframer.Failure) -> Int {
        let inbound = inbound
        try deframer.append(bytes) { inbound.push($0) }
        return receiveWindow.received(bytes.count, buffered: inbound.bufferedBytes)
    }

    /// The window to reopen now that the reader took messages.
    func repayWindow() -> Int {
        receiveWindow.repay(buffered: inbound.bufferedBytes)
    }
}
