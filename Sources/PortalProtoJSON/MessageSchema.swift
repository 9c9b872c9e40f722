/// One message type, resolved: its fields sorted by number and its names indexed.
///
/// A class, like `FieldSchema`: conversions read schemas on every message and field, and a reference
/// costs one retain where a copied struct would retain each of its arrays and strings.
final class MessageSchema: Sendable {
    /// The fully qualified name without a leading dot.
    let fullName: String
    /// The fields in field-number order.
    let fields: [FieldSchema]
    /// The names of the oneofs, indexed by `FieldSchema.oneofIndex`.
    let oneofNames: [String]
    /// The JSON form this type has when it is a well-known type with a special one.
    let wellKnownType: WellKnownType?
    /// Whether this is the synthetic entry type of a map field (key is field 1, value field 2).
    let isMapEntry: Bool
    /// Field index by field number, for numbers below `denseLimit` (−1 where none): a lookup per wire tag.
    private let denseIndexByNumber: [Int]
    /// Field index by field number, for larger numbers.
    private let indexByNumber: [Int: Int]
    /// Field index by JSON name, and by proto name where that differs.
    private let indexByName: [String: Int]

    /// A schema for `fields`, indexing them by number and by both of their names.
    init(fullName: String, fields: [FieldSchema], oneofNames: [String], isMapEntry: Bool) {
        self.fullName = fullName
        self.fields = fields.sorted { $0.number < $1.number }
        self.oneofNames = oneofNames
        self.isMapEntry = isMapEntry
        wellKnownType = WellKnownType(rawValue: fullName)
        var byNumber: [Int: Int] = [:]
        var byName: [String: Int] = [:]
        for (index, field) in self.fields.enumerated() {
            byNumber[field.number] = index
            byName[field.name] = index
        }
        for (index, field) in self.fields.enumerated() { byName[field.jsonName] = index }
        var dense = [Int](repeating: -1, count: min(Self.denseLimit, (self.fields.last?.number ?? 0) + 1))
        for (index, field) in self.fields.enumerated() where field.number < dense.count { dense[field.number] = index }
        denseIndexByNumber = dense
        indexByNumber = byNumber
        indexByName = byName
    }

    /// Field numbers below this are looked up in an array.
    private static let denseLimit = 256

    /// The index in `fields` of the field with this number.
    func fieldIndex(number: Int) -> Int? {
        if number >= 0, number < denseIndexByNumber.count {
            let index = denseIndexByNumber[number]
            return index >= 0 ? index : nil
        }
        return number < Self.denseLimit ? nil : indexByNumber[number]
    }

    /// The index in `fields` of the field with this JSON or proto name.
    func fieldIndex(name: String) -> Int? { indexByName[name] }
}

/// One field of a message, resolved.
final class FieldSchema: Sendable {
    /// The name as declared in the proto file.
    let name: String
    /// The lowerCamelCase name JSON uses.
    let jsonName: String
    /// The field number.
    let number: Int
    /// What one value of the field holds.
    let kind: FieldKind
    /// Whether the field is `repeated` (maps included).
    let isRepeated: Bool
    /// Whether this is a map field (repeated, of a map-entry message).
    let isMap: Bool
    /// Whether being set is distinct from holding the default (message fields, oneof members, `optional`).
    let hasPresence: Bool
    /// The oneof the field belongs to, as an index into `MessageSchema.oneofNames`.
    let oneofIndex: Int?

    /// A resolved field.
    init(
        name: String, jsonName: String, number: Int, kind: FieldKind, isRepeated: Bool, isMap: Bool, hasPresence: Bool,
        oneofIndex: Int?
    ) {
        self.name = name
        self.jsonName = jsonName
        self.number = number
        self.kind = kind
        self.isRepeated = isRepeated
        self.isMap = isMap
        self.hasPresence = hasPresence
        self.oneofIndex = oneofIndex
    }
}

/// One enum type, resolved.
struct EnumSchema: Sendable {
    /// The fully qualified name without a leading dot.
    let fullName: String
    /// The name of each number (the first declared, when values alias).
    let nameByNumber: [Int32: String]
    /// The number of each name.
    let numberByName: [String: Int32]
}
