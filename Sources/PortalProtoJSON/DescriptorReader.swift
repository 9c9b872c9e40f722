/// Reads serialized `google.protobuf.FileDescriptorProto`s (field numbers from `descriptor.proto`).
enum DescriptorReader {
    /// Reads one file descriptor.
    static func readFile(_ bytes: [UInt8]) throws(ProtoJSONError) -> FileDescription {
        var file = FileDescription()
        try forEachField(bytes, 0..<bytes.count) { (number, value) throws(ProtoJSONError) in
            switch (number, value) {
            case (1, .delimited(let range)): file.name = try text(bytes, range)
            case (2, .delimited(let range)): file.package = try text(bytes, range)
            case (4, .delimited(let range)): file.messages.append(try readMessage(bytes, range))
            case (5, .delimited(let range)): file.enums.append(try readEnum(bytes, range))
            case (6, .delimited(let range)): file.services.append(try readService(bytes, range))
            case (12, .delimited(let range)): file.syntax = try text(bytes, range)
            default: break
            }
        }
        return file
    }

    /// Reads a `DescriptorProto`.
    private static func readMessage(_ bytes: [UInt8], _ range: Range<Int>) throws(ProtoJSONError) -> MessageDescription
    {
        var message = MessageDescription()
        try forEachField(bytes, range) { (number, value) throws(ProtoJSONError) in
            switch (number, value) {
            case (1, .delimited(let range)): message.name = try text(bytes, range)
            case (2, .delimited(let range)): message.fields.append(try readField(bytes, range))
            case (3, .delimited(let range)): message.nestedMessages.append(try readMessage(bytes, range))
            case (4, .delimited(let range)): message.nestedEnums.append(try readEnum(bytes, range))
            case (7, .delimited(let range)):
                try forEachField(bytes, range) { (number, value) throws(ProtoJSONError) in
                    if number == 7, case .varint(let flag) = value { message.isMapEntry = flag != 0 }
                }
            case (8, .delimited(let range)):
                var name = ""
                try forEachField(bytes, range) { (number, value) throws(ProtoJSONError) in
                    if number == 1, case .delimited(let range) = value { name = try text(bytes, range) }
                }
                message.oneofNames.append(name)
            default: break
            }
        }
        return message
    }

    /// Reads a `FieldDescriptorProto`.
    private static func readField(_ bytes: [UInt8], _ range: Range<Int>) throws(ProtoJSONError) -> FieldDescription {
        var field = FieldDescription()
        try forEachField(bytes, range) { (number, value) throws(ProtoJSONError) in
            switch (number, value) {
            case (1, .delimited(let range)): field.name = try text(bytes, range)
            case (3, .varint(let raw)): field.number = Int32(truncatingIfNeeded: raw)
            case (4, .varint(let raw)): field.label = Int32(truncatingIfNeeded: raw)
            case (5, .varint(let raw)): field.type = Int32(truncatingIfNeeded: raw)
            case (6, .delimited(let range)): field.typeName = try text(bytes, range)
            case (9, .varint(let raw)): field.oneofIndex = Int(Int32(truncatingIfNeeded: raw))
            case (10, .delimited(let range)): field.jsonName = try text(bytes, range)
            case (17, .varint(let raw)): field.isProto3Optional = raw != 0
            default: break
            }
        }
        return field
    }

    /// Reads an `EnumDescriptorProto`.
    private static func readEnum(_ bytes: [UInt8], _ range: Range<Int>) throws(ProtoJSONError) -> EnumDescription {
        var description = EnumDescription()
        try forEachField(bytes, range) { (number, value) throws(ProtoJSONError) in
            switch (number, value) {
            case (1, .delimited(let range)): description.name = try text(bytes, range)
            case (2, .delimited(let range)):
                var name = ""
                var valueNumber: Int32 = 0
                try forEachField(bytes, range) { (number, value) throws(ProtoJSONError) in
                    switch (number, value) {
                    case (1, .delimited(let range)): name = try text(bytes, range)
                    case (2, .varint(let raw)): valueNumber = Int32(truncatingIfNeeded: raw)
                    default: break
                    }
                }
                description.values.append((name, valueNumber))
            default: break
            }
        }
        return description
    }

    /// Reads a `ServiceDescriptorProto`.
    private static func readService(_ bytes: [UInt8], _ range: Range<Int>) throws(ProtoJSONError) -> ServiceDescription
    {
        var service = ServiceDescription()
        try forEachField(bytes, range) { (number, value) throws(ProtoJSONError) in
            switch (number, value) {
            case (1, .delimited(let range)): service.name = try text(bytes, range)
            case (2, .delimited(let range)): service.methods.append(try readMethod(bytes, range))
            default: break
            }
        }
        return service
    }

    /// Reads a `MethodDescriptorProto` and the idempotency level of its options.
    private static func readMethod(_ bytes: [UInt8], _ range: Range<Int>) throws(ProtoJSONError) -> MethodDescription {
        var method = MethodDescription()
        try forEachField(bytes, range) { (number, value) throws(ProtoJSONError) in
            switch (number, value) {
            case (1, .delimited(let range)): method.name = try text(bytes, range)
            case (2, .delimited(let range)): method.inputType = try text(bytes, range)
            case (3, .delimited(let range)): method.outputType = try text(bytes, range)
            case (4, .delimited(let range)):
                try forEachField(bytes, range) { (number, value) throws(ProtoJSONError) in
                    if number == 34, case .varint(let level) = value { method.idempotencyLevel = level }
                }
            case (5, .varint(let flag)): method.clientStreaming = flag != 0
            case (6, .varint(let flag)): method.serverStreaming = flag != 0
            default: break
            }
        }
        return method
    }

    /// One field's value as the descriptor reader needs it.
    private enum FieldValue {
        case varint(UInt64)
        case delimited(Range<Int>)
        case other
    }

    /// Calls `body` with every field of the message in `range`, in wire order.
    private static func forEachField(
        _ bytes: [UInt8], _ range: Range<Int>, _ body: (Int, FieldValue) throws(ProtoJSONError) -> Void
    ) throws(ProtoJSONError) {
        var reader = WireReader(bytes, range: range)
        while !reader.isAtEnd {
            let tag = try reader.readTag()
            switch tag.wireType {
            case .varint: try body(tag.number, .varint(try reader.readVarint()))
            case .lengthDelimited: try body(tag.number, .delimited(try reader.readLengthDelimited()))
            default:
                try reader.skip(tag.wireType, number: tag.number)
                try body(tag.number, .other)
            }
        }
    }

    /// Decodes a UTF-8 string field.
    private static func text(_ bytes: [UInt8], _ range: Range<Int>) throws(ProtoJSONError) -> String {
        guard let text = String(validating: bytes[range], as: UTF8.self) else {
            throw ProtoJSONError("invalid UTF-8 in a descriptor")
        }
        return text
    }
}
