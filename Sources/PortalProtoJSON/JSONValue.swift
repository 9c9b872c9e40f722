/// A parsed JSON value; numbers keep their exact text so 64-bit integers lose no precision.
enum JSONValue: Sendable {
    case null
    case bool(Bool)
    /// A number as written, already checked against the RFC 8259 grammar.
    case number(String)
    case string(String)
    case array([JSONValue])
    /// Members in the order written; keys are unique.
    case object([(key: String, value: JSONValue)])

    /// A short name of the value's JSON type, for error messages.
    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}
