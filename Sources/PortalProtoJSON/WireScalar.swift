/// One scalar or enum value converted from JSON, ready to be written in its wire form.
enum WireScalar: Hashable {
    case varint(UInt64)
    case fixed32(UInt32)
    case fixed64(UInt64)
    case delimited([UInt8])

    /// Whether this is the default of a field without presence: all bits zero, or empty.
    var isZero: Bool {
        switch self {
        case .varint(let value): value == 0
        case .fixed32(let value): value == 0
        case .fixed64(let value): value == 0
        case .delimited(let bytes): bytes.isEmpty
        }
    }

    /// The wire type the value is written with.
    var wireType: WireType {
        switch self {
        case .varint: .varint
        case .fixed32: .fixed32
        case .fixed64: .fixed64
        case .delimited: .lengthDelimited
        }
    }

    /// Writes the value without a tag (as a packed element, or after a tag written by the caller).
    func write(to writer: inout WireWriter) {
        switch self {
        case .varint(let value): writer.writeVarint(value)
        case .fixed32(let value): writer.writeFixed32(value)
        case .fixed64(let value): writer.writeFixed64(value)
        case .delimited(let bytes): writer.writeLengthDelimited(bytes)
        }
    }

    /// Writes the field's tag, then the value.
    func write(number: Int, to writer: inout WireWriter) {
        writer.writeTag(number, wireType)
        write(to: &writer)
    }

    /// Orders map keys of one kind for deterministic output: integers by value, bools false first, strings by bytes.
    func precedes(_ other: WireScalar, as kind: FieldKind) -> Bool {
        switch (self, other) {
        case (.varint(let left), .varint(let right)):
            switch kind {
            case .int32, .int64: Int64(bitPattern: left) < Int64(bitPattern: right)
            case .sint32, .sint64: Self.unZigZag(left) < Self.unZigZag(right)
            default: left < right
            }
        case (.fixed32(let left), .fixed32(let right)):
            kind == .sfixed32 ? Int32(bitPattern: left) < Int32(bitPattern: right) : left < right
        case (.fixed64(let left), .fixed64(let right)):
            kind == .sfixed64 ? Int64(bitPattern: left) < Int64(bitPattern: right) : left < right
        case (.delimited(let left), .delimited(let right)): left.lexicographicallyPrecedes(right)
        default: false
        }
    }

    private static func unZigZag(_ raw: UInt64) -> Int64 { Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1))) }
}
