extension JSONEmitter {
    /// Writes a `google.protobuf.Timestamp` as an RFC 3339 string.
    mutating func writeTimestamp(_ message: MessageSchema, _ decoded: DecodedMessage) throws(ProtoJSONError) {
        var seconds: Int64 = 0
        var nanos: Int32 = 0
        if case .varint(let raw) = decoded.last(message, number: 1) { seconds = Int64(bitPattern: raw) }
        if case .varint(let raw) = decoded.last(message, number: 2) { nanos = Int32(truncatingIfNeeded: raw) }
        writer.writeString(try TimestampText.format(seconds: seconds, nanos: nanos))
    }

    /// Writes a `google.protobuf.Any` as `{"@type": URL, …fields}`, or `{"@type": URL, "value": …}` for a
    /// well-known type.
    mutating func writeAny(_ message: MessageSchema, _ decoded: DecodedMessage, depth: Int) throws(ProtoJSONError) {
        let urlRange = decoded.last(message, number: 1)?.range ?? 0..<0
        let payload = decoded.last(message, number: 2)?.range ?? 0..<0
        if urlRange.isEmpty, payload.isEmpty {
            writer.writeRaw("{}")
            return
        }
        guard let url = String(validating: bytes[urlRange], as: UTF8.self) else {
            throw ProtoJSONError(field: "@type", "invalid UTF-8 in a string")
        }
        guard let type = schema.messageIndex(typeURL: url) else {
            throw ProtoJSONError(field: "@type", "unknown message type \"\(url)\"")
        }
        writer.writeByte(UInt8(ascii: "{"))
        var isFirst = true
        writeKey("@type", isFirst: &isFirst)
        writer.writeString(url)
        let packed = schema.messages[type]
        if packed.wellKnownType != nil {
            writeKey("value", isFirst: &isFirst)
            do { try writeMessage(type, ranges: [payload], depth: depth + 1) } catch { throw error.inField("value") }
        } else {
            guard depth + 1 < ProtoJSONLimits.maximumDepth else {
                throw ProtoJSONError("messages nested more than \(ProtoJSONLimits.maximumDepth) deep")
            }
            try writeFields(
                packed, try DecodedMessage(packed, bytes: bytes, ranges: [payload]), depth: depth + 1, isFirst: &isFirst
            )
        }
        writer.writeByte(UInt8(ascii: "}"))
    }
}
