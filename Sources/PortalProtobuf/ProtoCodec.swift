public import CProtobufC

/// Packs and unpacks messages with protobuf-c; the only place C messages are created and freed.
@usableFromInline
enum ProtoCodec {
    @inlinable
    static func decode<Message: ProtoMessage>(
        _ type: Message.Type, from bytes: UnsafeRawBufferPointer
    ) throws -> Message {
        let layout = Message.protoLayout
        if bytes.isEmpty {
            return Message()
        }
        if let problem = ProtoStringValidator.problem(in: bytes, descriptor: layout.descriptor) {
            throw ProtoDecodingError(messageName: Message.protoMessageName, byteCount: bytes.count, problem: problem)
        }
        guard let base = bytes.baseAddress,
            let unpacked = protobuf_c_message_unpack(
                layout.descriptor, nil, bytes.count, base.assumingMemoryBound(to: UInt8.self))
        else {
            throw ProtoDecodingError(messageName: Message.protoMessageName, byteCount: bytes.count)
        }
        defer { protobuf_c_message_free_unpacked(unpacked, nil) }
        return Message(reading: ProtoReader(layout: layout, base: UnsafeRawPointer(unpacked)))
    }

    @inlinable
    static func encode<Message: ProtoMessage, Result>(
        _ message: Message, _ body: (UnsafeRawBufferPointer) throws -> Result
    ) rethrows -> Result {
        var result: Result?
        try ProtoArena.with { arena in
            let writer = ProtoWriter(layout: Message.protoLayout, arena: arena)
            message.write(to: writer)
            let cMessage = writer.base.assumingMemoryBound(to: ProtobufCMessage.self)
            let size = protobuf_c_message_get_packed_size(cMessage)
            let output = arena.allocate(size).assumingMemoryBound(to: UInt8.self)
            let written = protobuf_c_message_pack(cMessage, output)
            result = try body(UnsafeRawBufferPointer(start: output, count: written))
        }
        return result!
    }
}
