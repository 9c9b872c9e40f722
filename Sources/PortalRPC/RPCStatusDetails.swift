/// The `google.rpc.Status` message that carries an error's details (`grpc-status-details-bin`),
/// written and read at the wire level so a transport needs no generated messages.
///
/// `message Status { int32 code = 1; string message = 2; repeated google.protobuf.Any details = 3; }`
/// and `message Any { string type_url = 1; bytes value = 2; }`.
public enum RPCStatusDetails {
    /// The encoded `google.rpc.Status` for `code`, `message` and `details`.
    public static func encode(code: RPCStatusCode, message: String, details: [RPCErrorDetail]) -> [UInt8] {
        var bytes: [UInt8] = []
        if code.rawValue != 0 {
            bytes.append(0x08)
            appendVarint(UInt64(UInt32(bitPattern: Int32(code.rawValue))), to: &bytes)
        }
        if !message.isEmpty { appendField(2, Array(message.utf8), to: &bytes) }
        for detail in details {
            var any: [UInt8] = []
            if !detail.typeURL.isEmpty { appendField(1, Array(detail.typeURL.utf8), to: &any) }
            if !detail.value.isEmpty { appendField(2, detail.value, to: &any) }
            appendField(3, any, to: &bytes)
        }
        return bytes
    }

    /// The details of an encoded `google.rpc.Status`; nil when the bytes are not one.
    public static func decodeDetails(_ bytes: [UInt8]) -> [RPCErrorDetail]? {
        var details: [RPCErrorDetail] = []
        let complete = readFields(bytes[...]) { field, value in
            guard field == 3, case .bytes(let any) = value else { return true }
            var detail = RPCErrorDetail(typeURL: "", value: [])
            let valid = readFields(any) { field, value in
                guard case .bytes(let content) = value else { return true }
                if field == 1 {
                    guard let text = String(validating: content, as: UTF8.self) else { return false }
                    detail.typeURL = text
                } else if field == 2 {
                    detail.value = Array(content)
                }
                return true
            }
            guard valid else { return false }
            details.append(detail)
            return true
        }
        return complete ? details : nil
    }

    private enum FieldValue {
        case scalar
        case bytes(ArraySlice<UInt8>)
    }

    /// Reads every field of a message, handing length-delimited ones to `body`; false when malformed
    /// or when `body` refuses a field.
    private static func readFields(_ bytes: ArraySlice<UInt8>, _ body: (UInt64, FieldValue) -> Bool) -> Bool {
        var index = bytes.startIndex
        while index < bytes.endIndex {
            guard let key = readVarint(bytes, &index) else { return false }
            let field = key >> 3
            guard field > 0 else { return false }
            switch key & 7 {
            case 0:
                guard readVarint(bytes, &index) != nil else { return false }
                guard body(field, .scalar) else { return false }
            case 1, 5:
                let width = key & 7 == 1 ? 8 : 4
                guard bytes.endIndex - index >= width else { return false }
                index += width
            case 2:
                guard let length = readVarint(bytes, &index), length <= UInt64(bytes.endIndex - index) else {
                    return false
                }
                let end = index + Int(length)
                guard body(field, .bytes(bytes[index..<end])) else { return false }
                index = end
            default:
                return false
            }
        }
        return true
    }

    private static func readVarint(_ bytes: ArraySlice<UInt8>, _ index: inout Int) -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while index < bytes.endIndex, shift < 64 {
            let byte = bytes[index]
            index += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }

    private static func appendField(_ field: UInt64, _ value: [UInt8], to bytes: inout [UInt8]) {
        appendVarint(field << 3 | 2, to: &bytes)
        appendVarint(UInt64(value.count), to: &bytes)
        bytes += value
    }

    private static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }
}
