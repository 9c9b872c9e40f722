/// Limits that keep hostile input from exhausting the stack.
enum ProtoJSONLimits {
    /// The deepest nesting of JSON arrays and objects, of messages, and of dotted query parameter names.
    static let maximumDepth = 100
}
