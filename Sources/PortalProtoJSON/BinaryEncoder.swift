/// Encodes parsed JSON as protobuf binary, field by field in field-number order, repeated scalars packed.
struct BinaryEncoder {
    /// The types the JSON is read with.
    let schema: ProtoSchema
    /// Whether values came as query parameters: bools may be the strings `true`/`false`, and a repeated field may
    /// be given a single value instead of a list.
    let valuesAreText: Bool

    /// The binary encoding of `value` as a message of type `index`.
    func encodeMessage(_ index: Int, from value: JSONValue, depth: Int) throws(ProtoJSONError) -> [UInt8] {
        guard depth < ProtoJSONLimits.maximumDepth else {
            throw ProtoJSONError("messages nested more than \(ProtoJSONLimits.maximumDepth) deep")
        }
        let message = schema.messages[index]
        switch message.wellKnownType {
        case .timestamp: return try encodeTimestamp(value)
        case .any: return try encodeAny(value, depth: depth)
        case nil:
            guard case .object(let members) = value else {
                throw ProtoJSONError("expected an object, not \(value.typeName)")
            }
            return try encodeFields(message, members, depth: depth)
        }
    }

    /// The binary encoding of an object's members as the fields of `message`.
    func encodeFields(
        _ message: MessageSchema, _ members: [(key: String, value: JSONValue)], depth: Int
    ) throws(ProtoJSONError) -> [UInt8] {
        var encodedFields: [WireWriter?] = Array(repeating: nil, count: message.fields.count)
        var setOneofs: [Int: String] = [:]
        for (key, value) in members {
            guard let index = message.fieldIndex(name: key) else { throw ProtoJSONError(field: key, "unknown field") }
            let field = message.fields[index]
            guard encodedFields[index] == nil else {
                throw ProtoJSONError(field: field.jsonName, "field given more than once")
            }
            encodedFields[index] = WireWriter()
            if case .null = value { continue }
            if let oneof = field.oneofIndex {
                if let other = setOneofs[oneof] {
                    throw ProtoJSONError(
                        field: field.jsonName, "\(other) is already set for oneof \(message.oneofNames[oneof])")
                }
                setOneofs[oneof] = field.jsonName
            }
            do throws(ProtoJSONError) {
                try encodeField(field, value, depth: depth, into: &encodedFields[index]!)
            } catch {
                throw error.inField(field.jsonName)
            }
        }
        var writer = WireWriter()
        for case let encoded? in encodedFields { writer.writeRaw(encoded.bytes) }
        return writer.bytes
    }

    private func encodeField(
        _ field: FieldSchema, _ value: JSONValue, depth: Int, into writer: inout WireWriter
    ) throws(ProtoJSONError) {
        if field.isMap {
            try encodeMap(field, value, depth: depth, into: &writer)
        } else if field.isRepeated {
            try encodeList(field, value, depth: depth, into: &writer)
        } else {
            if valuesAreText, case .array = value { throw ProtoJSONError("expected a single value") }
            if case .message(let type) = field.kind {
                writer.writeTag(field.number, .lengthDelimited)
                writer.writeLengthDelimited(try encodeMessage(type, from: value, depth: depth + 1))
            } else {
                let scalar = try scalar(from: value, kind: field.kind)
                if field.hasPresence || !scalar.isZero { scalar.write(number: field.number, to: &writer) }
            }
        }
    }

    private func encodeList(
        _ field: FieldSchema, _ value: JSONValue, depth: Int, into writer: inout WireWriter
    ) throws(ProtoJSONError) {
        let elements: [JSONValue]
        switch value {
        case .array(let values): elements = values
        case .string where valuesAreText, .object where valuesAreText: elements = [value]
        default: throw ProtoJSONError("expected an array, not \(value.typeName)")
        }
        var packed = WireWriter()
        for (position, element) in elements.enumerated() {
            do throws(ProtoJSONError) {
                if case .null = element { throw ProtoJSONError("null is not a valid list element") }
                if case .message(let type) = field.kind {
                    writer.writeTag(field.number, .lengthDelimited)
                    writer.writeLengthDelimited(try encodeMessage(type, from: element, depth: depth + 1))
                } else if field.kind.isPackable {
                    try scalar(from: element, kind: field.kind).write(to: &packed)
                } else {
                    try scalar(from: element, kind: field.kind).write(number: field.number, to: &writer)
                }
            } catch {
                throw error.atIndex(position)
            }
        }
        if !packed.bytes.isEmpty {
            writer.writeTag(field.number, .lengthDelimited)
            writer.writeLengthDelimited(packed.bytes)
        }
    }

    /// Encodes a map's entries in key order (key and value always written); a key given twice keeps its last value.
    private func encodeMap(
        _ field: FieldSchema, _ value: JSONValue, depth: Int, into writer: inout WireWriter
    ) throws(ProtoJSONError) {
        guard case .message(let entryType) = field.kind else { return }
        let entry = schema.messages[entryType]
        guard let keyIndex = entry.fieldIndex(number: 1), let valueIndex = entry.fieldIndex(number: 2) else {
            throw ProtoJSONError("map entry \(entry.fullName) lacks a key or value field")
        }
        guard case .object(let members) = value else {
            throw ProtoJSONError("expected an object, not \(value.typeName)")
        }
        let keyKind = entry.fields[keyIndex].kind
        let valueKind = entry.fields[valueIndex].kind
        var entries: [WireScalar: [UInt8]] = [:]
        for (key, element) in members {
            do throws(ProtoJSONError) {
                let keyScalar: WireScalar
                do { keyScalar = try mapKey(key, kind: keyKind) } catch {
                    throw ProtoJSONError("invalid map key: \(error.reason)")
                }
                if case .null = element { throw ProtoJSONError("null is not a valid map value") }
                var entryWriter = WireWriter()
                keyScalar.write(number: 1, to: &entryWriter)
                if case .message(let type) = valueKind {
                    entryWriter.writeTag(2, .lengthDelimited)
                    entryWriter.writeLengthDelimited(try encodeMessage(type, from: element, depth: depth + 1))
                } else {
                    try scalar(from: element, kind: valueKind).write(number: 2, to: &entryWriter)
                }
                entries[keyScalar] = entryWriter.bytes
            } catch {
                throw error.atKey(key)
            }
        }
        for key in entries.keys.sorted(by: { $0.precedes($1, as: keyKind) }) {
            writer.writeTag(field.number, .lengthDelimited)
            writer.writeLengthDelimited(entries[key]!)
        }
    }
}
