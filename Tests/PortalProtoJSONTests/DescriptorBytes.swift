import PortalRPC

/// Writes protobuf messages by hand, for descriptors of schemas the embedded files do not have.
struct DescriptorBytes {
    private(set) var bytes: [UInt8] = []

    /// Appends a varint field.
    mutating func varint(_ field: Int, _ value: UInt64) {
        appendVarint(UInt64(field) << 3)
        appendVarint(value)
    }

    /// Appends a string field.
    mutating func string(_ field: Int, _ text: String) { delimited(field, Array(text.utf8)) }

    /// Appends a message field built by `build`.
    mutating func message(_ field: Int, _ build: (inout DescriptorBytes) -> Void) {
        var inner = DescriptorBytes()
        build(&inner)
        delimited(field, inner.bytes)
    }

    /// A `ProtoFileDescriptor` holding these bytes as its serialized `FileDescriptorProto`.
    func file(named name: String) -> ProtoFileDescriptor {
        ProtoFileDescriptor(
            name: name, dependencies: [], services: [], symbols: [], base64: Base64.encode(bytes, padding: true))
    }

    /// Appends a `FieldDescriptorProto` (field 2 of a `DescriptorProto`); no `json_name`, so the codec computes it.
    mutating func field(
        _ name: String, number: Int, type: Int, label: Int = 1, typeName: String? = nil, oneof: Int? = nil
    ) {
        message(2) { field in
            field.string(1, name)
            field.varint(3, UInt64(number))
            field.varint(4, UInt64(label))
            field.varint(5, UInt64(type))
            if let typeName { field.string(6, typeName) }
            if let oneof { field.varint(9, UInt64(oneof)) }
        }
    }

    private mutating func delimited(_ field: Int, _ payload: [UInt8]) {
        appendVarint(UInt64(field) << 3 | 2)
        appendVarint(UInt64(payload.count))
        bytes += payload
    }

    private mutating func appendVarint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }
}
