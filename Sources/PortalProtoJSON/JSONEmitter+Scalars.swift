extension JSONEmitter {
    /// Writes one scalar or enum value: 64-bit integers as strings, non-finite floats as names, bytes as base64.
    mutating func writeScalar(_ value: WireValue, kind: FieldKind) throws(ProtoJSONError) {
        switch (kind, value) {
        case (.int32, .varint(let raw)): writer.writeRaw(String(Int32(truncatingIfNeeded: raw)))
        case (.uint32, .varint(let raw)): writer.writeRaw(String(UInt32(truncatingIfNeeded: raw)))
        case (.sint32, .varint(let raw)): writer.writeRaw(String(Self.zigZag32(raw)))
        case (.int64, .varint(let raw)): writer.writeString(String(Int64(bitPattern: raw)))
        case (.uint64, .varint(let raw)): writer.writeString(String(raw))
        case (.sint64, .varint(let raw)): writer.writeString(String(Self.zigZag64(raw)))
        case (.bool, .varint(let raw)): writer.writeRaw(raw != 0 ? "true" : "false")
        case (.enumeration(let type), .varint(let raw)):
            let number = Int32(truncatingIfNeeded: raw)
            if let name = schema.enums[type].nameByNumber[number] {
                writer.writeString(name)
            } else {
                writer.writeRaw(String(number))
            }
        case (.fixed32, .fixed32(let raw)): writer.writeRaw(String(raw))
        case (.sfixed32, .fixed32(let raw)): writer.writeRaw(String(Int32(bitPattern: raw)))
        case (.float, .fixed32(let raw)): writeFloatingPoint(Float(bitPattern: raw))
        case (.fixed64, .fixed64(let raw)): writer.writeString(String(raw))
        case (.sfixed64, .fixed64(let raw)): writer.writeString(String(Int64(bitPattern: raw)))
        case (.double, .fixed64(let raw)): writeFloatingPoint(Double(bitPattern: raw))
        case (.string, .delimited(let range)):
            // ASCII is valid UTF-8 as it stands; anything else is checked by decoding it.
            guard bytes[range].allSatisfy({ $0 < 0x80 }) || String(validating: bytes[range], as: UTF8.self) != nil
            else {
                throw ProtoJSONError("invalid UTF-8 in a string")
            }
            writer.writeString(utf8: bytes[range])
        case (.bytes, .delimited(let range)): writer.writeString(Base64Text.encode(bytes[range]))
        default: throw ProtoJSONError("wire type does not match the field")
        }
    }

    /// Reads a map key of the given kind.
    func mapKey(_ value: WireValue, kind: FieldKind) throws(ProtoJSONError) -> MapKey {
        switch (kind, value) {
        case (.int32, .varint(let raw)): .signed(Int64(Int32(truncatingIfNeeded: raw)))
        case (.int64, .varint(let raw)): .signed(Int64(bitPattern: raw))
        case (.uint32, .varint(let raw)): .unsigned(UInt64(UInt32(truncatingIfNeeded: raw)))
        case (.uint64, .varint(let raw)): .unsigned(raw)
        case (.sint32, .varint(let raw)): .signed(Int64(Self.zigZag32(raw)))
        case (.sint64, .varint(let raw)): .signed(Self.zigZag64(raw))
        case (.bool, .varint(let raw)): .bool(raw != 0)
        case (.fixed32, .fixed32(let raw)): .unsigned(UInt64(raw))
        case (.sfixed32, .fixed32(let raw)): .signed(Int64(Int32(bitPattern: raw)))
        case (.fixed64, .fixed64(let raw)): .unsigned(raw)
        case (.sfixed64, .fixed64(let raw)): .signed(Int64(bitPattern: raw))
        case (.string, .delimited(let range)):
            if String(validating: bytes[range], as: UTF8.self) != nil {
                .string(Array(bytes[range]))
            } else {
                throw ProtoJSONError("invalid UTF-8 in a map key")
            }
        default: throw ProtoJSONError("invalid map key")
        }
    }

    /// Writes a float or double as its shortest round-trip text, or `"NaN"`, `"Infinity"`, `"-Infinity"`.
    private mutating func writeFloatingPoint<Value: BinaryFloatingPoint & CustomStringConvertible>(_ value: Value) {
        if value.isNaN {
            writer.writeString("NaN")
        } else if value.isInfinite {
            writer.writeString(value < 0 ? "-Infinity" : "Infinity")
        } else {
            writer.writeRaw(value.description)
        }
    }

    private static func zigZag32(_ raw: UInt64) -> Int32 {
        let value = UInt32(truncatingIfNeeded: raw)
        return Int32(bitPattern: (value >> 1) ^ (0 &- (value & 1)))
    }

    private static func zigZag64(_ raw: UInt64) -> Int64 {
        Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }
}
