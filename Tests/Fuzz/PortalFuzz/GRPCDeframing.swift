@testable import PortalHTTP2

/// The gRPC deframer: the input arrives in pieces (sizes taken from the input itself); every message
/// it returns, framed again, must be exactly the bytes it consumed.
enum GRPCDeframing {

    static func run(_ input: [UInt8]) {
        guard let first = input.first else { return }
        let piece = Int(first % 64) + 1
        let bytes = Array(input.dropFirst())
        var deframer = GRPCMessageDeframer(maxMessageBytes: 1 << 16)
        var messages: [[UInt8]] = []
        var offset = 0
        do {
            while offset < bytes.count {
                let end = min(offset + piece, bytes.count)
                messages += try bytes[offset..<end].withUnsafeBytes { try deframer.append($0) }
                offset = end
            }
            try deframer.finish()
        } catch {
            return
        }
        var framed: [UInt8] = []
        for message in messages {
            framed.append(0)
            let length = UInt32(message.count)
            framed += [
                UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF),
            ]
            framed += message
        }
        require(framed == bytes, "deframed messages do not frame back to the input")
    }
}
