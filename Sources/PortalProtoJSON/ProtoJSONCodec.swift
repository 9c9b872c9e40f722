import PortalRPC

/// Converts messages between protobuf binary and canonical proto3 JSON, for every type in a set of proto files.
public struct ProtoJSONCodec: Sendable {
    private let schema: ProtoSchema

    /// A codec for every message, enum and method the files define; every type they reference must be among them.
    public init(files: [ProtoFileDescriptor]) throws(ProtoJSONError) {
        var descriptions: [FileDescription] = []
        for file in files {
            do { descriptions.append(try DescriptorReader.readFile(file.serialized)) } catch {
                throw ProtoJSONError(field: file.name, "unreadable descriptor: \(error.description)")
            }
        }
        schema = try SchemaBuilder.build(descriptions)
    }

    /// The method at an HTTP path `/package.Service/Method`, nil when unknown.
    public func method(path: String) -> ProtoJSONMethod? { schema.methodsByPath[path] }

    /// JSON text (UTF-8) of a binary message of the named type (fully qualified, no leading dot).
    public func json(fromBinary bytes: [UInt8], messageType: String) throws(ProtoJSONError) -> [UInt8] {
        var emitter = JSONEmitter(schema: schema, bytes: bytes)
        try emitter.writeMessage(try messageIndex(messageType), ranges: [0..<bytes.count], depth: 0)
        return emitter.writer.bytes
    }

    /// Binary encoding of JSON text (UTF-8) of the named type.
    public func binary(fromJSON json: [UInt8], messageType: String) throws(ProtoJSONError) -> [UInt8] {
        let index = try messageIndex(messageType)
        let value = try JSONParser.parse(json)
        return try BinaryEncoder(schema: schema, valuesAreText: false).encodeMessage(index, from: value, depth: 0)
    }

    /// Binary encoding of a JSON object given as already-parsed query parameters: name -> values (repeated
    /// fields take several; scalars take one), values as JSON strings would be interpreted (numbers, bools,
    /// enum names, timestamps all given as text).
    ///
    /// A dotted name sets a field of a message field (`filter.timeStart=…`), or a map entry (`labels.key=value`).
    public func binary(
        fromQuery parameters: [(name: String, value: String)], messageType: String
    ) throws(ProtoJSONError) -> [UInt8] {
        let index = try messageIndex(messageType)
        let object = try QueryParameters.jsonObject(parameters)
        return try BinaryEncoder(schema: schema, valuesAreText: true).encodeMessage(index, from: object, depth: 0)
    }

    private func messageIndex(_ name: String) throws(ProtoJSONError) -> Int {
        guard let index = schema.messageIndex(named: name) else { throw ProtoJSONError("unknown message type \(name)") }
        return index
    }
}
