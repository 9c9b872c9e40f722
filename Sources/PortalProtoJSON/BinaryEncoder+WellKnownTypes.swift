extension BinaryEncoder {
    /// Encodes an RFC 3339 string as a `google.protobuf.Timestamp`.
    func encodeTimestamp(_ value: JSONValue) throws(ProtoJSONError) -> [UInt8] {
        guard case .string(let text) = value else {
            throw ProtoJSONError("expected an RFC 3339 timestamp, not \(value.typeName)")
        }
        let (seconds, nanos) = try TimestampText.parse(text)
        var writer = WireWriter()
        if seconds != 0 { WireScalar.varint(UInt64(bitPattern: seconds)).write(number: 1, to: &writer) }
        if nanos != 0 { WireScalar.varint(UInt64(bitPattern: Int64(nanos))).write(number: 2, to: &writer) }
        return writer.bytes
    }

    /// Encodes `{"@type": URL, …fields}` (or `{"@type": URL, "value": …}` for a well-known type) as a
    /// `google.protobuf.Any`.
    func encodeAny(_ value: JSONValue, depth: Int) throws(ProtoJSONError) -> [UInt8] {
        guard case .object(let members) = value else {
            throw ProtoJSONError("expected an object, not \(value.typeName)")
        }
        if members.isEmpty { return [] }
        guard let typeMember = members.first(where: { $0.key == "@type" }) else {
            throw ProtoJSONError("missing \"@type\"")
        }
        guard case .string(let url) = typeMember.value else {
            throw ProtoJSONError(field: "@type", "expected a type URL string")
        }
        guard let type = schema.messageIndex(typeURL: url) else {
            throw ProtoJSONError(field: "@type", "unknown message type \"\(url)\"")
        }
        let packed = schema.messages[type]
        let rest = members.filter { $0.key != "@type" }
        let payload: [UInt8]
        if packed.wellKnownType != nil {
            if let unknown = rest.first(where: { $0.key != "value" }) {
                throw ProtoJSONError(field: unknown.key, "unknown field")
            }
            guard let inner = rest.first?.value else { throw ProtoJSONError("missing \"value\"") }
            do { payload = try encodeMessage(type, from: inner, depth: depth + 1) } catch {
                throw error.inField("value")
            }
        } else {
            guard depth + 1 < ProtoJSONLimits.maximumDepth else {
                throw ProtoJSONError("messages nested more than \(ProtoJSONLimits.maximumDepth) deep")
            }
            payload = try encodeFields(packed, rest, depth: depth + 1)
        }
        var writer = WireWriter()
        WireScalar.delimited(Array(url.utf8)).write(number: 1, to: &writer)
        if !payload.isEmpty { WireScalar.delimited(payload).write(number: 2, to: &writer) }
        return writer.bytes
    }
}
