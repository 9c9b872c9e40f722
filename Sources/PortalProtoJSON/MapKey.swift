/// A map key as read from the wire, ordered so map entries are written in key order.
enum MapKey: Hashable, Comparable {
    case bool(Bool)
    case signed(Int64)
    case unsigned(UInt64)
    /// A string key's UTF-8 bytes (already validated).
    case string([UInt8])

    /// The key as JSON object keys spell it: decimal integers, `true`/`false`, the string itself.
    var text: String {
        switch self {
        case .bool(let value): value ? "true" : "false"
        case .signed(let value): String(value)
        case .unsigned(let value): String(value)
        case .string(let bytes): String(decoding: bytes, as: UTF8.self)
        }
    }

    /// Orders keys of one kind: false before true, integers numerically, strings by their UTF-8 bytes.
    static func < (lhs: MapKey, rhs: MapKey) -> Bool {
        switch (lhs, rhs) {
        case (.bool(let left), .bool(let right)): !left && right
        case (.signed(let left), .signed(let right)): left < right
        case (.unsigned(let left), .unsigned(let right)): left < right
        case (.string(let left), .string(let right)): left.lexicographicallyPrecedes(right)
        default: false
        }
    }
}
