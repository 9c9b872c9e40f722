/// Why a message could not be converted; `description` names the field path, e.g. `events[3].createdAt:
/// expected an RFC 3339 timestamp`.
public struct ProtoJSONError: Error, Sendable, CustomStringConvertible {
    /// The path of the offending field in JSON names (`items[2].createdAt`, `labels["x"]`); empty for the
    /// whole message.
    public let field: String
    /// What is wrong with it.
    public let reason: String

    /// The field path and the reason, or the reason alone when the whole message is at fault.
    public var description: String { field.isEmpty ? reason : "\(field): \(reason)" }

    /// An error about the field at `field` (a path relative to the message being converted).
    init(field: String = "", _ reason: String) {
        self.field = field
        self.reason = reason
    }

    /// The same error seen from the message that contains the field `name`.
    func inField(_ name: String) -> ProtoJSONError {
        ProtoJSONError(field: field.isEmpty || field.hasPrefix("[") ? name + field : name + "." + field, reason)
    }

    /// The same error seen from the list that holds the element at `index`.
    func atIndex(_ index: Int) -> ProtoJSONError {
        ProtoJSONError(
            field: field.isEmpty || field.hasPrefix("[") ? "[\(index)]" + field : "[\(index)]." + field, reason)
    }

    /// The same error seen from the map that holds the entry under `key`.
    func atKey(_ key: String) -> ProtoJSONError {
        var quoted = JSONWriter()
        quoted.writeString(key)
        let component = "[" + quoted.text + "]"
        return ProtoJSONError(
            field: field.isEmpty || field.hasPrefix("[") ? component + field : component + "." + field, reason)
    }
}
