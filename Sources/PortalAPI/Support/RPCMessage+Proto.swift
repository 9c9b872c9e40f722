import PortalProtobuf
import PortalRPC

extension RPCMessage where Self: ProtoMessage {
    /// Decodes the message with protobuf-c.
    public init(rpcBytes: [UInt8]) throws {
        try self.init(serializedBytes: rpcBytes)
    }

    /// Encodes the message with protobuf-c.
    public func rpcBytes() -> [UInt8] {
        serializedBytes()
    }
}
