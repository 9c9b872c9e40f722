extension BinaryEncoder {
    /// Converts a JSON value to a scalar or enum of `kind`: integers from numbers or strings, floats also from
    /// `"NaN"`/`"Infinity"`/`"-Infinity"`, bytes from base64, enums from names or numbers.
    func scalar(from value: JSONValue, kind: FieldKind) throws(ProtoJSONError) -> WireScalar {
        switch kind {
        case .int32: return .varint(UInt64(bitPattern: try signed(value, in: Int64(Int32.min)...Int64(Int32.max))))
        case .int64: return .varint(UInt64(bitPattern: try signed(value, in: Int64.min...Int64.max)))
        case .uint32: return .varint(try unsigned(value, maximum: UInt64(UInt32.max)))
        case .uint64: return .varint(try unsigned(value, maximum: UInt64.max))
        case .sint32: return .varint(Self.zigZag(try signed(value, in: Int64(Int32.min)...Int64(Int32.max))))
        case .sint64: return .varint(Self.zigZag(try signed(value, in: Int64.min...Int64.max)))
        case .fixed32: return .fixed32(UInt32(try unsigned(value, maximum: UInt64(UInt32.max))))
        case .fixed64: return .fixed64(try unsigned(value, maximum: UInt64.max))
        case .sfixed32:
            return .fixed32(UInt32(bitPattern: Int32(try signed(value, in: Int64(Int32.min)...Int64(Int32.max)))))
        case .sfixed64: return .fixed64(UInt64(bitPattern: try signed(value, in: Int64.min...Int64.max)))
        case .bool: return .varint(try bool(value, fromText: valuesAreText) ? 1 : 0)
        case .double: return .fixed64(try double(value).bitPattern)
        case .float:
            let number = try double(value)
            guard number.isNaN || number.isInfinite || abs(number) <= Double(Float.greatestFiniteMagnitude) else {
                throw ProtoJSONError("\(number) is out of range for a float")
            }
            return .fixed32(Float(number).bitPattern)
        case .string:
            guard case .string(let text) = value else {
                throw ProtoJSONError("expected a string, not \(value.typeName)")
            }
            return .delimited(Array(text.utf8))
        case .bytes:
            guard case .string(let text) = value else {
                throw ProtoJSONError("expected base64 text, not \(value.typeName)")
            }
            return .delimited(try Base64Text.decode(text))
        case .enumeration(let type):
            return .varint(UInt64(bitPattern: Int64(try enumNumber(value, schema.enums[type]))))
        case .message:
            throw ProtoJSONError("expected a message")
        }
    }

    /// Converts an object key to a map key of `kind`: integers in decimal, bools as `true`/`false`, strings as is.
    func mapKey(_ key: String, kind: FieldKind) throws(ProtoJSONError) -> WireScalar {
        switch kind {
        case .string: .delimited(Array(key.utf8))
        case .bool: .varint(try bool(.string(key), fromText: true) ? 1 : 0)
        default: try scalar(from: .string(key), kind: kind)
        }
    }

    private func integerText(_ value: JSONValue) throws(ProtoJSONError) -> String {
        switch value {
        case .number(let text): return text
        case .string(let text) where NumberGrammar.isNumber(text): return text
        case .string(let text): throw ProtoJSONError("expected an integer, not \"\(text)\"")
        default: throw ProtoJSONError("expected an integer, not \(value.typeName)")
        }
    }

    private func signed(_ value: JSONValue, in range: ClosedRange<Int64>) throws(ProtoJSONError) -> Int64 {
        try IntegerText.signed(try integerText(value), in: range)
    }

    private func unsigned(_ value: JSONValue, maximum: UInt64) throws(ProtoJSONError) -> UInt64 {
        try IntegerText.unsigned(try integerText(value), maximum: maximum)
    }

    private func double(_ value: JSONValue) throws(ProtoJSONError) -> Double {
        let text: String
        switch value {
        case .number(let number): text = number
        case .string("NaN"): return .nan
        case .string("Infinity"): return .infinity
        case .string("-Infinity"): return -.infinity
        case .string(let number) where NumberGrammar.isNumber(number): text = number
        case .string(let other): throw ProtoJSONError("expected a number, not \"\(other)\"")
        default: throw ProtoJSONError("expected a number, not \(value.typeName)")
        }
        guard let number = Double(text), number.isFinite else { throw ProtoJSONError("number \(text) out of range") }
        return number
    }

    private func bool(_ value: JSONValue, fromText: Bool) throws(ProtoJSONError) -> Bool {
        switch value {
        case .bool(let flag): return flag
        case .string("true") where fromText: return true
        case .string("false") where fromText: return false
        default: throw ProtoJSONError("expected true or false, not \(value.typeName)")
        }
    }

    private func enumNumber(_ value: JSONValue, _ type: EnumSchema) throws(ProtoJSONError) -> Int32 {
        switch value {
        case .string(let name):
            if let number = type.numberByName[name] { return number }
            if NumberGrammar.isNumber(name) {
                return Int32(try IntegerText.signed(name, in: Int64(Int32.min)...Int64(Int32.max)))
            }
            throw ProtoJSONError("unknown value \"\(name)\" for enum \(type.fullName)")
        case .number(let text):
            return Int32(try IntegerText.signed(text, in: Int64(Int32.min)...Int64(Int32.max)))
        default:
            throw ProtoJSONError("expected an enum value name or number, not \(value.typeName)")
        }
    }

    private static func zigZag(_ value: Int64) -> UInt64 { UInt64(bitPattern: (value << 1) ^ (value >> 63)) }
}
