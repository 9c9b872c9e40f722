/// gRPC messages queued for one stream's DATA frames, framed as they are copied out.
///
/// Holds each message as the handler produced it; the 5-byte length prefix is written on the way
/// out, so queuing a message copies nothing.
struct OutboundMessages {
    private var messages: [[UInt8]] = []
    private var head = 0
    /// Bytes of the current message already copied out, counting its 5-byte prefix.
    private var offset = 0
    /// Framed bytes still queued.
    private(set) var count = 0

    /// Queues one message; it goes out as 5 bytes of prefix followed by its bytes.
    mutating func append(_ message: [UInt8]) {
        messages.append(message)
        count += message.count + 5
    }

    /// Copies up to `buffer.count` framed bytes into `buffer`, returning how many.
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var written = 0
        while written < buffer.count, head < messages.count {
            let message = messages[head]
            while offset < 5, written < buffer.count {
                let length = UInt32(message.count)
                buffer[written] = offset == 0 ? 0 : UInt8(truncatingIfNeeded: length >> UInt32(8 * (4 - offset)))
                offset += 1
                written += 1
            }
            let start = offset - 5
            let take = min(message.count - start, buffer.count - written)
            if take > 0 {
                message.withUnsafeBytes { bytes in
                    UnsafeMutableRawBufferPointer(rebasing: buffer[written..<(written + take)])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[start..<(start + take)]))
                }
                written += take
                offset += take
            }
            if offset == message.count + 5 {
                messages[head] = []
                head += 1
                offset = 0
            }
        }
        if head == messages.count {
            messages.removeAll(keepingCapacity: true)
            head = 0
        }
        count -= written
        return written
    }
}
