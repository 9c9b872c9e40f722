/// Every message, enum and method of a set of proto files, resolved for conversion.
struct ProtoSchema: Sendable {
    /// The message types; `FieldKind.message` holds an index into this.
    let messages: [MessageSchema]
    /// The enum types; `FieldKind.enumeration` holds an index into this.
    let enums: [EnumSchema]
    /// Message index by fully qualified name (no leading dot).
    let messageIndexByName: [String: Int]
    /// Methods by HTTP path, `/package.Service/Method`.
    let methodsByPath: [String: ProtoJSONMethod]

    /// The index of the message type with this fully qualified name (a leading dot is ignored).
    func messageIndex(named name: String) -> Int? {
        messageIndexByName[name.hasPrefix(".") ? String(name.dropFirst()) : name]
    }

    /// The index of the message type a `type.googleapis.com/NAME` URL names: whatever follows the last slash.
    func messageIndex(typeURL: String) -> Int? {
        guard let slash = typeURL.lastIndex(of: "/") else { return nil }
        let name = typeURL[typeURL.index(after: slash)...]
        return name.isEmpty ? nil : messageIndexByName[String(name)]
    }
}
