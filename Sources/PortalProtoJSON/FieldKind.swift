/// What a field holds, as `FieldDescriptorProto.Type` says, with message and enum types resolved.
enum FieldKind: Equatable {
    case double, float, int64, uint64, int32, fixed64, fixed32, bool, string, bytes, uint32, sfixed32, sfixed64, sint32,
        sint64
    /// An enum; the index of its `EnumSchema` in the `ProtoSchema`.
    case enumeration(Int)
    /// A message; the index of its `MessageSchema` in the `ProtoSchema`.
    case message(Int)

    /// The wire type of one value of this kind when it is not packed.
    var wireType: WireType {
        switch self {
        case .double, .fixed64, .sfixed64: .fixed64
        case .float, .fixed32, .sfixed32: .fixed32
        case .string, .bytes, .message: .lengthDelimited
        case .int64, .uint64, .int32, .bool, .uint32, .sint32, .sint64, .enumeration: .varint
        }
    }

    /// Whether repeated values of this kind may be packed into one length-delimited field.
    var isPackable: Bool { wireType != .lengthDelimited }

    /// Whether JSON spells values of this kind as strings (the 64-bit integers).
    var isSixtyFourBitInteger: Bool {
        switch self {
        case .int64, .uint64, .fixed64, .sfixed64, .sint64: true
        default: false
        }
    }

    /// The kind for a `FieldDescriptorProto.Type` number that names no message or enum.
    init?(scalarType type: Int32) {
        switch type {
        case 1: self = .double
        case 2: self = .float
        case 3: self = .int64
        case 4: self = .uint64
        case 5: self = .int32
        case 6: self = .fixed64
        case 7: self = .fixed32
        case 8: self = .bool
        case 9: self = .string
        case 12: self = .bytes
        case 13: self = .uint32
        case 15: self = .sfixed32
        case 16: self = .sfixed64
        case 17: self = .sint32
        case 18: self = .sint64
        default: return nil
        }
    }
}
