public import CProtobufC

/// Read access to one decoded protobuf-c message, handed to generated `init(reading:)`.
///
/// Valid only during that initializer: the C message is freed right after decoding.
public struct ProtoReader {
    @usableFromInline let layout: ProtoLayout
    @usableFromInline let base: UnsafeRawPointer

    @inlinable
    init(layout: ProtoLayout, base: UnsafeRawPointer) {
        self.layout = layout
        self.base = base
    }

    @inlinable @inline(__always)
    func slot(_ field: UnsafePointer<ProtobufCFieldDescriptor>) -> UnsafeRawPointer {
        base + Int(field.pointee.offset)
    }

    @inlinable @inline(__always)
    func count(_ field: UnsafePointer<ProtobufCFieldDescriptor>) -> Int {
        Int(base.loadUnaligned(fromByteOffset: Int(field.pointee.quantifier_offset), as: Int.self))
    }

    @inlinable @inline(__always)
    func nested(_ field: UnsafePointer<ProtobufCFieldDescriptor>, at address: UnsafeRawPointer) -> ProtoReader {
        ProtoReader(layout: ProtoLayout(descriptorAddress: field.pointee.descriptor), base: address)
    }

    /// Whether field `number` is present: an `optional` scalar, a message, or the active oneof member.
    @inlinable
    public func has(_ number: UInt32) -> Bool {
        let field = layout.field(number)
        if field.pointee.flags & UInt32(PROTOBUF_C_FIELD_FLAG_ONEOF.rawValue) != 0 {
            return base.loadUnaligned(fromByteOffset: Int(field.pointee.quantifier_offset), as: UInt32.self) == number
        }
        switch field.pointee.type {
        case PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_TYPE_STRING:
            let pointer = slot(field).loadUnaligned(as: UnsafeRawPointer?.self)
            return pointer != nil && pointer != field.pointee.default_value
        default:
            if field.pointee.label == PROTOBUF_C_LABEL_OPTIONAL {
                return base.loadUnaligned(
                    fromByteOffset: Int(field.pointee.quantifier_offset), as: protobuf_c_boolean.self) != 0
            }
            return true
        }
    }

    /// The number of the active member of the oneof that field `anyMember` belongs to, or 0.
    @inlinable
    public func oneofCase(_ anyMember: UInt32) -> UInt32 {
        let field = layout.field(anyMember)
        return base.loadUnaligned(fromByteOffset: Int(field.pointee.quantifier_offset), as: UInt32.self)
    }

    /// A fixed-size scalar field.
    @inlinable
    public func scalar<Value: ProtoScalar>(_ number: UInt32, as type: Value.Type = Value.self) -> Value {
        Value.load(from: slot(layout.field(number)))
    }

    /// An enum field.
    @inlinable
    public func enumeration<Value: ProtoEnum>(_ number: UInt32, as type: Value.Type = Value.self) -> Value {
        Value(rawValue: Int32.load(from: slot(layout.field(number))))
    }

    /// A string field ("" when unset).
    @inlinable
    public func string(_ number: UInt32) -> String {
        guard let pointer = slot(layout.field(number)).loadUnaligned(as: UnsafePointer<CChar>?.self) else { return "" }
        return String(cString: pointer)
    }

    /// A bytes field (empty when unset).
    @inlinable
    public func bytes(_ number: UInt32) -> [UInt8] {
        Self.copy(slot(layout.field(number)).loadUnaligned(as: ProtobufCBinaryData.self))
    }

    /// A message field, or nil when it is absent.
    @inlinable
    public func message<Message: ProtoMessage>(_ number: UInt32, as type: Message.Type = Message.self) -> Message? {
        let field = layout.field(number)
        guard let pointer = slot(field).loadUnaligned(as: UnsafeRawPointer?.self) else { return nil }
        return Message(reading: nested(field, at: pointer))
    }

    /// A repeated fixed-size scalar field.
    @inlinable
    public func scalars<Value: ProtoScalar>(_ number: UInt32, as type: Value.Type = Value.self) -> [Value] {
        let field = layout.field(number)
        let n = count(field)
        guard n > 0, let array = slot(field).loadUnaligned(as: UnsafeRawPointer?.self) else { return [] }
        return (0..<n).map { Value.load(from: array + $0 * Value.cStride) }
    }

    /// A repeated enum field.
    @inlinable
    public func enumerations<Value: ProtoEnum>(_ number: UInt32, as type: Value.Type = Value.self) -> [Value] {
        scalars(number, as: Int32.self).map(Value.init(rawValue:))
    }

    /// A repeated string field.
    @inlinable
    public func strings(_ number: UInt32) -> [String] {
        pointers(layout.field(number)).map { String(cString: $0.assumingMemoryBound(to: CChar.self)) }
    }

    /// A repeated bytes field.
    @inlinable
    public func bytesList(_ number: UInt32) -> [[UInt8]] {
        let field = layout.field(number)
        let n = count(field)
        guard n > 0, let array = slot(field).loadUnaligned(as: UnsafeRawPointer?.self) else { return [] }
        let stride = MemoryLayout<ProtobufCBinaryData>.stride
        return (0..<n).map { Self.copy(array.loadUnaligned(fromByteOffset: $0 * stride, as: ProtobufCBinaryData.self)) }
    }

    /// A repeated message field.
    @inlinable
    public func messages<Message: ProtoMessage>(_ number: UInt32, as type: Message.Type = Message.self) -> [Message] {
        let field = layout.field(number)
        return pointers(field).map { Message(reading: nested(field, at: $0)) }
    }

    /// A map field; `entry` reads one key/value pair from an entry (key is field 1, value field 2).
    @inlinable
    public func map<Key: Hashable, Value>(_ number: UInt32, entry: (ProtoReader) -> (Key, Value)) -> [Key: Value] {
        let field = layout.field(number)
        var result: [Key: Value] = [:]
        for pointer in pointers(field) {
            let (key, value) = entry(nested(field, at: pointer))
            result[key] = value
        }
        return result
    }

    /// Fields the schema did not know.
    @inlinable
    public var unknownFields: ProtoUnknownFields {
        let message = base.assumingMemoryBound(to: ProtobufCMessage.self).pointee
        guard message.n_unknown_fields > 0, let fields = message.unknown_fields else { return ProtoUnknownFields() }
        return ProtoUnknownFields(
            (0..<Int(message.n_unknown_fields)).map { index in
                let field = fields[index]
                let data = field.data.map { [UInt8](UnsafeBufferPointer(start: $0, count: field.len)) } ?? []
                return .init(number: field.tag, wireType: UInt8(field.wire_type.rawValue), data: data)
            })
    }

    @inlinable
    func pointers(_ field: UnsafePointer<ProtobufCFieldDescriptor>) -> [UnsafeRawPointer] {
        let n = count(field)
        guard n > 0, let array = slot(field).loadUnaligned(as: UnsafePointer<UnsafeRawPointer>?.self) else { return [] }
        return Array(UnsafeBufferPointer(start: array, count: n))
    }

    @inlinable
    static func copy(_ data: ProtobufCBinaryData) -> [UInt8] {
        guard data.len > 0, let bytes = data.data else { return [] }
        return [UInt8](UnsafeBufferPointer(start: bytes, count: data.len))
    }
}
