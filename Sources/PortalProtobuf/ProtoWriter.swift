public import CProtobufC

/// Write access to a protobuf-c message under construction, handed to generated `write(to:)`.
///
/// All memory comes from the encoding call's arena and lives until the message is packed.
public struct ProtoWriter {
    @usableFromInline let layout: ProtoLayout
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let arena: ProtoArena

    @inlinable
    init(layout: ProtoLayout, arena: ProtoArena) {
        self.layout = layout
        self.arena = arena
        base = arena.allocate(layout.descriptor.pointee.sizeof_message)
        protobuf_c_message_init(layout.descriptor, base)
    }

    @inlinable @inline(__always)
    func slot(_ field: UnsafePointer<ProtobufCFieldDescriptor>) -> UnsafeMutableRawPointer {
        base + Int(field.pointee.offset)
    }

    /// Records presence: the oneof case, or the `has_` flag of an optional scalar.
    @inlinable @inline(__always)
    func markPresent(_ field: UnsafePointer<ProtobufCFieldDescriptor>) {
        let quantifier = Int(field.pointee.quantifier_offset)
        if field.pointee.flags & UInt32(PROTOBUF_C_FIELD_FLAG_ONEOF.rawValue) != 0 {
            base.storeBytes(of: field.pointee.id, toByteOffset: quantifier, as: UInt32.self)
        } else if field.pointee.label == PROTOBUF_C_LABEL_OPTIONAL, quantifier != 0 {
            base.storeBytes(of: 1, toByteOffset: quantifier, as: protobuf_c_boolean.self)
        }
    }

    @inlinable @inline(__always)
    func setCount(_ field: UnsafePointer<ProtobufCFieldDescriptor>, _ count: Int) {
        base.storeBytes(of: count, toByteOffset: Int(field.pointee.quantifier_offset), as: Int.self)
    }

    @inlinable
    func nested(_ field: UnsafePointer<ProtobufCFieldDescriptor>) -> ProtoWriter {
        ProtoWriter(layout: ProtoLayout(descriptorAddress: field.pointee.descriptor), arena: arena)
    }

    /// Sets a fixed-size scalar field (and its presence when it has any).
    @inlinable
    public func setScalar<Value: ProtoScalar>(_ number: UInt32, _ value: Value) {
        let field = layout.field(number)
        value.store(to: slot(field))
        markPresent(field)
    }

    /// Sets an enum field.
    @inlinable
    public func setEnumeration<Value: ProtoEnum>(_ number: UInt32, _ value: Value) {
        setScalar(number, value.rawValue)
    }

    /// Sets a string field.
    @inlinable
    public func setString(_ number: UInt32, _ value: String) {
        let field = layout.field(number)
        slot(field).storeBytes(of: arena.cString(value), as: UnsafeMutablePointer<CChar>.self)
        markPresent(field)
    }

    /// Sets a bytes field.
    @inlinable
    public func setBytes(_ number: UInt32, _ value: [UInt8]) {
        let field = layout.field(number)
        slot(field).storeBytes(
            of: ProtobufCBinaryData(len: value.count, data: arena.bytes(value)), as: ProtobufCBinaryData.self)
        markPresent(field)
    }

    /// Sets a message field.
    @inlinable
    public func setMessage<Message: ProtoMessage>(_ number: UInt32, _ value: Message) {
        let field = layout.field(number)
        let child = nested(field)
        value.write(to: child)
        slot(field).storeBytes(of: child.base, as: UnsafeMutableRawPointer.self)
        markPresent(field)
    }

    /// Sets a repeated fixed-size scalar field.
    @inlinable
    public func setScalars<Value: ProtoScalar>(_ number: UInt32, _ values: [Value]) {
        guard !values.isEmpty else { return }
        let field = layout.field(number)
        let array = arena.allocate(values.count * Value.cStride)
        for (index, value) in values.enumerated() { value.store(to: array + index * Value.cStride) }
        slot(field).storeBytes(of: array, as: UnsafeMutableRawPointer.self)
        setCount(field, values.count)
    }

    /// Sets a repeated enum field.
    @inlinable
    public func setEnumerations<Value: ProtoEnum>(_ number: UInt32, _ values: [Value]) {
        setScalars(number, values.map(\.rawValue))
    }

    /// Sets a repeated string field.
    @inlinable
    public func setStrings(_ number: UInt32, _ values: [String]) {
        setPointers(number, values) { UnsafeMutableRawPointer(arena.cString($0)) }
    }

    /// Sets a repeated bytes field.
    @inlinable
    public func setBytesList(_ number: UInt32, _ values: [[UInt8]]) {
        guard !values.isEmpty else { return }
        let field = layout.field(number)
        let stride = MemoryLayout<ProtobufCBinaryData>.stride
        let array = arena.allocate(values.count * stride)
        for (index, value) in values.enumerated() {
            array.storeBytes(
                of: ProtobufCBinaryData(len: value.count, data: arena.bytes(value)), toByteOffset: index * stride,
                as: ProtobufCBinaryData.self)
        }
        slot(field).storeBytes(of: array, as: UnsafeMutableRawPointer.self)
        setCount(field, values.count)
    }

    /// Sets a repeated message field.
    @inlinable
    public func setMessages<Message: ProtoMessage>(_ number: UInt32, _ values: [Message]) {
        guard !values.isEmpty else { return }
        let field = layout.field(number)
        setPointers(number, values) { value in
            let child = nested(field)
            value.write(to: child)
            return child.base
        }
    }

    /// Sets a map field; `entry` writes one key/value pair into an entry (key field 1, value field 2).
    @inlinable
    public func setMap<Key, Value>(_ number: UInt32, _ map: [Key: Value], entry: (ProtoWriter, Key, Value) -> Void) {
        // Entries in a fixed order (a Dictionary's own order depends on its history), so equal
        // messages always encode to equal bytes; only bool keys take this path.
        setEntries(number, map.sorted { String(describing: $0.key) < String(describing: $1.key) }, entry: entry)
    }

    /// Sets a map field with its entries in key order, so equal messages encode to equal bytes.
    @inlinable
    public func setMap<Key: Comparable, Value>(
        _ number: UInt32, _ map: [Key: Value], entry: (ProtoWriter, Key, Value) -> Void
    ) {
        setEntries(number, map.sorted { $0.key < $1.key }, entry: entry)
    }

    @usableFromInline
    func setEntries<Key, Value>(
        _ number: UInt32, _ entries: [(key: Key, value: Value)], entry: (ProtoWriter, Key, Value) -> Void
    ) {
        guard !entries.isEmpty else { return }
        let field = layout.field(number)
        setPointers(number, entries) { key, value in
            let child = nested(field)
            entry(child, key, value)
            return child.base
        }
    }

    /// Carries unknown fields through so a re-encoded message keeps them.
    @inlinable
    public func setUnknownFields(_ unknown: ProtoUnknownFields) {
        guard !unknown.isEmpty else { return }
        let stride = MemoryLayout<ProtobufCMessageUnknownField>.stride
        let array = arena.allocate(unknown.fields.count * stride)
        for (index, field) in unknown.fields.enumerated() {
            let record = ProtobufCMessageUnknownField(
                tag: field.number, wire_type: ProtobufCWireType(rawValue: UInt32(field.wireType)),
                len: field.data.count, data: arena.bytes(field.data))
            array.storeBytes(of: record, toByteOffset: index * stride, as: ProtobufCMessageUnknownField.self)
        }
        let message = base.assumingMemoryBound(to: ProtobufCMessage.self)
        message.pointee.n_unknown_fields = UInt32(unknown.fields.count)
        message.pointee.unknown_fields = array.assumingMemoryBound(to: ProtobufCMessageUnknownField.self)
    }

    /// Sets a repeated field of pointers (strings, messages) to one array in the arena, filled
    /// with `pointer` of each value in turn: no array of pointers is built first.
    @inlinable
    func setPointers<Values: Collection>(
        _ number: UInt32, _ values: Values, _ pointer: (Values.Element) -> UnsafeMutableRawPointer
    ) {
        guard !values.isEmpty else { return }
        let field = layout.field(number)
        let stride = MemoryLayout<UnsafeMutableRawPointer>.stride
        let array = arena.allocate(values.count * stride)
        for (index, value) in values.enumerated() {
            array.storeBytes(of: pointer(value), toByteOffset: index * stride, as: UnsafeMutableRawPointer.self)
        }
        slot(field).storeBytes(of: array, as: UnsafeMutableRawPointer.self)
        setCount(field, values.count)
    }
}
