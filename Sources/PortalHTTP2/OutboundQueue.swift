/// The body bytes queued for one stream's DATA frames: gRPC messages, framed as they are copied out,
/// or plain parts of an HTTP response.
///
/// Holds each part as its producer made it; a gRPC message's 5-byte length prefix is written on the
/// way out, so queuing copies nothing.
struct OutboundQueue {
    private var parts: [(bytes: [UInt8], framed: Bool)] = []
    private var head = 0
    /// Bytes of the current part already copied out, counting a framed part's 5-byte prefix.
    private var offset = 0
    /// Bytes still queued, prefixes included.
    private(set) var count = 0

    /// Queues a gRPC message; it goes out as 5 bytes of prefix followed by its bytes.
    mutating func appendMessage(_ message: [UInt8]) {
        parts.append((message, true))
        count += message.count + 5
    }

    /// Queues plain bytes, sent as they are.
    mutating func appendBytes(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        parts.append((bytes, false))
        count += bytes.count
    }

    /// Copies up to `buffer.count` bytes into `buffer`, returning how many.
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var written = 0
        while written < buffer.count, head < parts.count {
            let (bytes, framed) = parts[head]
            let prefix = framed ? 5 : 0
            while offset < prefix, written < buffer.count {
                let length = UInt32(bytes.count)
                buffer[written] = offset == 0 ? 0 : UInt8(truncatingIfNeeded: length >> UInt32(8 * (4 - offset)))
                offset += 1
                written += 1
            }
            let start = offset - prefix
            let take = min(bytes.count - start, buffer.count - written)
            if take > 0 {
                bytes.withUnsafeBytes { source in
                    UnsafeMutableRawBufferPointer(rebasing: buffer[written..<(written + take)])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[start..<(start + take)]))
                }
                written += take
                offset += take
            }
            if offset == bytes.count + prefix {
                parts[head] = ([], false)
                head += 1
                offset = 0
            }
        }
        if head == parts.count {
            parts.removeAll(keepingCapacity: true)
            head = 0
        }
        count -= written
        return written
    }
}
