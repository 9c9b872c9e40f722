/// Turns query parameters into the JSON object they stand for: `a.b=x` sets field `b` of message field `a`, and a
/// name given several times becomes a list.
enum QueryParameters {
    /// The object the parameters describe, every value a JSON string.
    static func jsonObject(_ parameters: [(name: String, value: String)]) throws(ProtoJSONError) -> JSONValue {
        var root = Node()
        for (name, value) in parameters {
            let path = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard !path.contains(where: \.isEmpty) else { throw ProtoJSONError(field: name, "invalid parameter name") }
            guard path.count <= ProtoJSONLimits.maximumDepth else {
                throw ProtoJSONError(
                    field: name, "parameter name nested more than \(ProtoJSONLimits.maximumDepth) deep")
            }
            root.insert(value, at: path[...])
        }
        return try root.objectValue()
    }

    /// The parameters under one name prefix: values given for it, and longer names below it.
    private struct Node {
        var values: [String] = []
        var children: [(key: String, node: Node)] = []

        mutating func insert(_ value: String, at path: ArraySlice<String>) {
            guard let key = path.first else {
                values.append(value)
                return
            }
            if let index = children.firstIndex(where: { $0.key == key }) {
                children[index].node.insert(value, at: path.dropFirst())
            } else {
                var child = Node()
                child.insert(value, at: path.dropFirst())
                children.append((key, child))
            }
        }

        func jsonValue() throws(ProtoJSONError) -> JSONValue {
            if children.isEmpty { return values.count == 1 ? .string(values[0]) : .array(values.map { .string($0) }) }
            guard values.isEmpty else { throw ProtoJSONError("given both as a value and as fields") }
            return try objectValue()
        }

        func objectValue() throws(ProtoJSONError) -> JSONValue {
            var members: [(key: String, value: JSONValue)] = []
            for (key, node) in children {
                do { members.append((key, try node.jsonValue())) } catch { throw error.inField(key) }
            }
            return .object(members)
        }
    }
}
