/// Writes the canonical proto3 JSON of binary messages, field by field in field-number order.
struct JSONEmitter {
    /// The types the messages are read with.
    let schema: ProtoSchema
    /// The binary input; wire values refer to ranges of it.
    let bytes: [UInt8]
    /// The JSON written so far.
    var writer = JSONWriter()

    /// Writes the message of type `index` made of the wire occurrences in `ranges` (merged, as protobuf does).
    mutating func writeMessage(_ index: Int, ranges: [Range<Int>], depth: Int) throws(ProtoJSONError) {
        guard depth < ProtoJSONLimits.maximumDepth else {
            throw ProtoJSONError("messages nested more than \(ProtoJSONLimits.maximumDepth) deep")
        }
        let message = schema.messages[index]
        let decoded = try DecodedMessage(message, bytes: bytes, ranges: ranges)
        switch message.wellKnownType {
        case .timestamp:
            try writeTimestamp(message, decoded)
        case .any:
            try writeAny(message, decoded, depth: depth)
        case nil:
            writer.writeByte(UInt8(ascii: "{"))
            var isFirst = true
            try writeFields(message, decoded, depth: depth, isFirst: &isFirst)
            writer.writeByte(UInt8(ascii: "}"))
        }
    }

    /// Writes the members for the fields that are set, without braces; `isFirst` tracks the commas.
    mutating func writeFields(
        _ message: MessageSchema, _ decoded: DecodedMessage, depth: Int, isFirst: inout Bool
    ) throws(ProtoJSONError) {
        for (index, field) in message.fields.enumerated() {
            let values = decoded.values[index]
            guard let last = values.last else { continue }
            if !field.isRepeated, !field.hasPresence, last.isZero { continue }
            writeKey(field.jsonName, isFirst: &isFirst)
            do throws(ProtoJSONError) {
                if field.isMap {
                    try writeMap(field, values, depth: depth)
                } else if field.isRepeated {
                    try writeList(field, values, depth: depth)
                } else if case .message(let type) = field.kind {
                    try writeMessage(type, ranges: values.compactMap(\.range), depth: depth + 1)
                } else {
                    try writeScalar(last, kind: field.kind)
                }
            } catch {
                throw error.inField(field.jsonName)
            }
        }
    }

    /// Writes `,"name":` (without the comma for the first member).
    mutating func writeKey(_ name: String, isFirst: inout Bool) {
        if !isFirst { writer.writeByte(UInt8(ascii: ",")) }
        isFirst = false
        writer.writeString(name)
        writer.writeByte(UInt8(ascii: ":"))
    }

    private mutating func writeList(_ field: FieldSchema, _ values: [WireValue], depth: Int) throws(ProtoJSONError) {
        writer.writeByte(UInt8(ascii: "["))
        for (position, value) in values.enumerated() {
            if position > 0 { writer.writeByte(UInt8(ascii: ",")) }
            do throws(ProtoJSONError) {
                if case .message(let type) = field.kind {
                    try writeMessage(type, ranges: value.range.map { [$0] } ?? [], depth: depth + 1)
                } else {
                    try writeScalar(value, kind: field.kind)
                }
            } catch {
                throw error.atIndex(position)
            }
        }
        writer.writeByte(UInt8(ascii: "]"))
    }

    /// Writes a map as an object in key order; a key given twice keeps its last entry.
    private mutating func writeMap(_ field: FieldSchema, _ values: [WireValue], depth: Int) throws(ProtoJSONError) {
        guard case .message(let entryType) = field.kind else { return }
        let entry = schema.messages[entryType]
        guard let keyIndex = entry.fieldIndex(number: 1), let valueIndex = entry.fieldIndex(number: 2) else {
            throw ProtoJSONError("map entry \(entry.fullName) lacks a key or value field")
        }
        let keyKind = entry.fields[keyIndex].kind
        let valueKind = entry.fields[valueIndex].kind
        var entries: [(key: MapKey, values: [WireValue])] = []
        var positionByKey: [MapKey: Int] = [:]
        for value in values {
            let decoded = try DecodedMessage(entry, bytes: bytes, ranges: value.range.map { [$0] } ?? [])
            let key = try mapKey(decoded.values[keyIndex].last ?? .zero(of: keyKind), kind: keyKind)
            if let position = positionByKey[key] {
                entries[position].values = decoded.values[valueIndex]
            } else {
                positionByKey[key] = entries.count
                entries.append((key, decoded.values[valueIndex]))
            }
        }
        entries.sort { $0.key < $1.key }
        writer.writeByte(UInt8(ascii: "{"))
        var isFirst = true
        for (key, occurrences) in entries {
            let text = key.text
            writeKey(text, isFirst: &isFirst)
            do throws(ProtoJSONError) {
                if case .message(let type) = valueKind {
                    try writeMessage(type, ranges: occurrences.compactMap(\.range), depth: depth + 1)
                } else {
                    try writeScalar(occurrences.last ?? .zero(of: valueKind), kind: valueKind)
                }
            } catch {
                throw error.atKey(text)
            }
        }
        writer.writeByte(UInt8(ascii: "}"))
    }
}

extension WireValue {
    /// The range of a length-delimited value.
    var range: Range<Int>? {
        if case .delimited(let range) = self { range } else { nil }
    }

    /// The value a field of this kind has when its entry omits it.
    static func zero(of kind: FieldKind) -> WireValue {
        switch kind.wireType {
        case .fixed32: .fixed32(0)
        case .fixed64: .fixed64(0)
        case .lengthDelimited: .delimited(0..<0)
        default: .varint(0)
        }
    }
}
