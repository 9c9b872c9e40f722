/// A message's fields as read from one or more wire occurrences, with protobuf's merge rules applied.
///
/// A singular scalar keeps its last value; repeated fields and maps keep every value; a singular message keeps
/// every occurrence, which decode together as one merged message; setting a oneof member clears the others.
struct DecodedMessage {
    /// The values of each field, indexed like `MessageSchema.fields`.
    private(set) var values: [[WireValue]]
    /// The member currently set in each oneof, as a field index.
    private var oneofMembers: [Int?]

    /// Reads every occurrence in `ranges` of `bytes` as one message of `message`'s type; unknown fields are skipped.
    init(_ message: MessageSchema, bytes: [UInt8], ranges: [Range<Int>]) throws(ProtoJSONError) {
        values = Array(repeating: [], count: message.fields.count)
        oneofMembers = Array(repeating: nil, count: message.oneofNames.count)
        for range in ranges {
            var reader = WireReader(bytes, range: range)
            while !reader.isAtEnd {
                let tag = try reader.readTag()
                guard let index = message.fieldIndex(number: tag.number) else {
                    try reader.skip(tag.wireType, number: tag.number)
                    continue
                }
                let field = message.fields[index]
                if tag.wireType == field.kind.wireType {
                    let value = try Self.read(tag.wireType, from: &reader)
                    if field.isRepeated || isMessage(field) {
                        values[index].append(value)
                    } else {
                        values[index] = [value]
                    }
                } else if field.isRepeated, field.kind.isPackable, tag.wireType == .lengthDelimited {
                    var packed = WireReader(bytes, range: try reader.readLengthDelimited())
                    do throws(ProtoJSONError) {
                        while !packed.isAtEnd {
                            values[index].append(try Self.read(field.kind.wireType, from: &packed))
                        }
                    } catch {
                        throw error.inField(field.jsonName)
                    }
                } else {
                    try reader.skip(tag.wireType, number: tag.number)
                    continue
                }
                if let oneof = field.oneofIndex {
                    if let previous = oneofMembers[oneof], previous != index { values[previous] = [] }
                    oneofMembers[oneof] = index
                }
            }
        }
    }

    /// The last value of the field with this number, for scalars read by number (Any, Timestamp, map entries).
    func last(_ message: MessageSchema, number: Int) -> WireValue? {
        message.fieldIndex(number: number).flatMap { values[$0].last }
    }

    /// Every occurrence of the field with this number, for a singular message read by number.
    func all(_ message: MessageSchema, number: Int) -> [WireValue] {
        message.fieldIndex(number: number).map { values[$0] } ?? []
    }

    private func isMessage(_ field: FieldSchema) -> Bool {
        if case .message = field.kind { true } else { false }
    }

    private static func read(_ wireType: WireType, from reader: inout WireReader) throws(ProtoJSONError) -> WireValue {
        switch wireType {
        case .varint: .varint(try reader.readVarint())
        case .fixed32: .fixed32(try reader.readFixed32())
        case .fixed64: .fixed64(try reader.readFixed64())
        case .lengthDelimited: .delimited(try reader.readLengthDelimited())
        case .startGroup, .endGroup: throw ProtoJSONError("unexpected group")
        }
    }
}
