/// One field value as read off the wire, not yet interpreted by its field's kind.
enum WireValue {
    case varint(UInt64)
    case fixed32(UInt32)
    case fixed64(UInt64)
    /// The range of a length-delimited value in the buffer being read.
    case delimited(Range<Int>)

    /// Whether the value is the default of a field without presence: all bits zero, or empty.
    var isZero: Bool {
        switch self {
        case .varint(let value): value == 0
        case .fixed32(let value): value == 0
        case .fixed64(let value): value == 0
        case .delimited(let range): range.isEmpty
        }
    }
}
