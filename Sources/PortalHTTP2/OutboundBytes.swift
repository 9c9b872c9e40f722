/// A plain HTTP response body queued for one stream's DATA frames, part by part.
struct OutboundBytes {
    private var parts: [[UInt8]] = []
    private var head = 0
    private var offset = 0
    /// Bytes still queued.
    private(set) var count = 0

    /// Queues one part.
    mutating func append(_ part: [UInt8]) {
        guard !part.isEmpty else { return }
        parts.append(part)
        count += part.count
    }

    /// Copies up to `buffer.count` bytes into `buffer`, returning how many.
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var written = 0
        while written < buffer.count, head < parts.count {
            let part = parts[head]
            let take = min(part.count - offset, buffer.count - written)
            part.withUnsafeBytes { bytes in
                UnsafeMutableRawBufferPointer(rebasing: buffer[written..<(written + take)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + take)]))
            }
            written += take
            offset += take
            if offset == part.count {
                parts[head] = []
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
