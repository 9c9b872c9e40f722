public import CProtobufC

/// Checks what protobuf-c leaves unchecked: every string field is UTF-8 without NUL characters, and
/// every field number is valid.
///
/// protobuf-c keeps strings as NUL-terminated C strings, so a NUL inside one would silently cut
/// it short; proto3 also requires strings to be valid UTF-8. protobuf-c reads a tag of field number
/// 0 written in more than one byte, and numbers beyond 2^29 - 1, as unknown fields it then cannot
/// encode again, so both are refused here. Other malformed wire structure is left for protobuf-c to
/// reject.
@usableFromInline
enum ProtoStringValidator {
    /// Nested messages deeper than this are not inspected (protobuf-c decodes them regardless).
    static let maxDepth = 64
    /// The largest field number protobuf allows.
    static let maxFieldNumber: UInt64 = (1 << 29) - 1

    /// A description of the first bad string field (`"field labels.key: ..."`), or nil.
    @usableFromInline
    static func problem(
        in bytes: UnsafeRawBufferPointer, descriptor: UnsafePointer<ProtobufCMessageDescriptor>, depth: Int = 0
    ) -> String? {
        var index = 0
        while index < bytes.count {
            guard let tag = readVarint(bytes, &index) else { return nil }
            guard (1...maxFieldNumber).contains(tag >> 3) else { return "field number \(tag >> 3) is not valid" }
            switch tag & 7 {
            case 0:
                guard readVarint(bytes, &index) != nil else { return nil }
            case 1:
                index += 8
            case 5:
                index += 4
            case 2:
                guard let length = readVarint(bytes, &index), length <= UInt64(bytes.count - index) else { return nil }
                let body = UnsafeRawBufferPointer(rebasing: bytes[index..<(index + Int(length))])
                index += Int(length)
                guard let field = protobuf_c_message_descriptor_get_field(descriptor, UInt32(tag >> 3)) else {
                    continue
                }
                let name = String(cString: field.pointee.name)
                switch field.pointee.type {
                case PROTOBUF_C_TYPE_STRING:
                    if body.contains(0) { return "field \(name) contains a NUL character" }
                    if String(validating: body, as: UTF8.self) == nil { return "field \(name) is not valid UTF-8" }
                case PROTOBUF_C_TYPE_MESSAGE where depth < maxDepth:
                    let nested = field.pointee.descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
                    if let problem = problem(in: body, descriptor: nested, depth: depth + 1) {
                        return problem.replacingFirst("field ", with: "field \(name).")
                    }
                default:
                    break
                }
            default:
                return nil
            }
        }
        return nil
    }

    private static func readVarint(_ bytes: UnsafeRawBufferPointer, _ index: inout Int) -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while index < bytes.count, shift < 64 {
            let byte = bytes[index]
            index += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }
}

extension String {
    fileprivate func replacingFirst(_ prefix: String, with replacement: String) -> String {
        hasPrefix(prefix) ? replacement + dropFirst(prefix.count) : self
    }
}
