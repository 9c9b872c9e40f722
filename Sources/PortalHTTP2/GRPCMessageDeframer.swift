import PortalRPC

/// Splits a stream of DATA bytes into gRPC length-prefixed messages.
///
/// A value-type state machine: bytes go in, whole messages or a protocol error come out.
struct GRPCMessageDeframer {
    /// Why the byte stream cannot be read as gRPC messages.
    enum Failure: Error, Equatable {
        /// A message announced more bytes than the receive limit allows.
        case messageTooLarge(announced: Int, limit: Int)
        /// The compressed flag is set but the call negotiated no compression.
        case compressedWithoutEncoding
        /// The flag byte is neither 0 nor 1.
        case invalidFlag(UInt8)
        /// The stream ended inside a message.
        case truncated(missing: Int)

        /// The status the call ends with.
        var error: RPCError {
            switch self {
            case .messageTooLarge(let announced, let limit):
                RPCError(
                    .resourceExhausted, "received message of \(announced) bytes exceeds the limit of \(limit) bytes")
            case .compressedWithoutEncoding:
                RPCError(.internal, "compressed message received but no grpc-encoding was negotiated")
            case .invalidFlag(let flag):
                RPCError(.internal, "invalid gRPC message flag \(flag)")
            case .truncated(let missing):
                RPCError(.internal, "stream ended inside a gRPC message (\(missing) bytes missing)")
            }
        }
    }

    private let maxMessageBytes: Int
    /// Prefix bytes of the current message read so far (0–5), and their value: the flag in the
    /// top byte, the length below.
    private var prefixCount = 0
    private var prefix: UInt64 = 0
    private var body: [UInt8] = []
    private var bodyLength = -1

    /// Creates a deframer that refuses messages larger than `maxMessageBytes`.
    init(maxMessageBytes: Int) {
        self.maxMessageBytes = maxMessageBytes
    }

    /// Consumes `bytes`, returning every message they complete.
    mutating func append(_ bytes: UnsafeRawBufferPointer) throws(Failure) -> [[UInt8]] {
        var messages: [[UInt8]] = []
        try append(bytes) { messages.append($0) }
        return messages
    }

    /// Consumes `bytes`, handing each message they complete to `deliver`, in order.
    mutating func append(_ bytes: UnsafeRawBufferPointer, each deliver: ([UInt8]) -> Void) throws(Failure) {
        var index = 0
        while index < bytes.count {
            if bodyLength < 0 {
                while prefixCount < 5, index < bytes.count {
                    prefix = prefix << 8 | UInt64(bytes[index])
                    prefixCount += 1
                    index += 1
                }
                guard prefixCount == 5 else { break }
                let flag = UInt8(truncatingIfNeeded: prefix >> 32)
                switch flag {
                case 0: break
                case 1: throw .compressedWithoutEncoding
                default: throw .invalidFlag(flag)
                }
                let length = Int(prefix & 0xFFFF_FFFF)
                guard length <= maxMessageBytes else {
                    throw .messageTooLarge(announced: length, limit: maxMessageBytes)
                }
                // A message that is all here is copied once, straight out of the frame.
                if bytes.count - index >= length {
                    deliver(Array(UnsafeRawBufferPointer(rebasing: bytes[index..<(index + length)])))
                    index += length
                    prefixCount = 0
                    prefix = 0
                    continue
                }
                bodyLength = length
                body = []
                body.reserveCapacity(length)
            }
            let take = min(bodyLength - body.count, bytes.count - index)
            body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<(index + take)]))
            index += take
            if body.count == bodyLength {
                let message = body
                body = []
                prefixCount = 0
                prefix = 0
                bodyLength = -1
                deliver(message)
            }
        }
    }

    /// Checks that the stream did not end inside a message.
    func finish() throws(Failure) {
        if prefixCount > 0 {
            let missing = bodyLength < 0 ? 5 - prefixCount : bodyLength - body.count
            throw .truncated(missing: missing)
        }
    }
}
