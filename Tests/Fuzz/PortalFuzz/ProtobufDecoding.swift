import PortalAPI
import PortalRPC

/// Protobuf decoding of every generated message type: the first byte picks the type, the rest is
/// decoded. What decodes must encode, decode again and encode to the same bytes, and its documented
/// limits must be checkable.
enum ProtobufDecoding {

    static func run(_ input: [UInt8]) {
        guard let selector = input.first else { return }
        let type = ProtoFileRegistry.messageTypes[Int(selector) % ProtoFileRegistry.messageTypes.count]
        guard let message = try? type.init(rpcBytes: Array(input.dropFirst())) else { return }
        _ = message.fieldLimitViolation()
        let encoded = message.rpcBytes()
        guard let again = try? type.init(rpcBytes: encoded) else {
            fatalError("\(type): its own encoding does not decode")
        }
        require(again.rpcBytes() == encoded, "\(type): encoding is not stable across a round trip")
    }
}
