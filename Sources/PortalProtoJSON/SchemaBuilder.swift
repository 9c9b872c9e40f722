/// Resolves the descriptions of a set of proto files into a `ProtoSchema`.
struct SchemaBuilder {
    private var messageIndexByName: [String: Int] = [:]
    private var enumIndexByName: [String: Int] = [:]
    /// Every message with its fully qualified name and file syntax, in index order.
    private var pendingMessages: [(fullName: String, description: MessageDescription, syntax: String)] = []
    private var enums: [EnumSchema] = []
    private var methodsByPath: [String: ProtoJSONMethod] = [:]

    /// Resolves the files' types and methods; every referenced type must be in one of the files.
    static func build(_ files: [FileDescription]) throws(ProtoJSONError) -> ProtoSchema {
        var builder = SchemaBuilder()
        for file in files {
            let scope = file.package.isEmpty ? "" : file.package + "."
            for message in file.messages { try builder.register(message, scope: scope, syntax: file.syntax) }
            for description in file.enums { try builder.register(description, scope: scope) }
        }
        for file in files {
            for service in file.services { try builder.register(service, package: file.package) }
        }
        var messages: [MessageSchema] = []
        messages.reserveCapacity(builder.pendingMessages.count)
        for pending in builder.pendingMessages {
            messages.append(
                try builder.resolve(pending.description, fullName: pending.fullName, syntax: pending.syntax))
        }
        return ProtoSchema(
            messages: messages, enums: builder.enums, messageIndexByName: builder.messageIndexByName,
            methodsByPath: builder.methodsByPath)
    }

    /// Gives a message and everything nested in it an index.
    private mutating func register(_ message: MessageDescription, scope: String, syntax: String) throws(ProtoJSONError)
    {
        let fullName = scope + message.name
        guard !WellKnownType.unsupportedNames.contains(fullName) else {
            throw ProtoJSONError(field: fullName, "this well-known type's JSON form is not supported")
        }
        guard messageIndexByName[fullName] == nil, enumIndexByName[fullName] == nil else {
            throw ProtoJSONError(field: fullName, "type defined twice")
        }
        messageIndexByName[fullName] = pendingMessages.count
        pendingMessages.append((fullName, message, syntax))
        for nested in message.nestedMessages { try register(nested, scope: fullName + ".", syntax: syntax) }
        for nested in message.nestedEnums { try register(nested, scope: fullName + ".") }
    }

    /// Gives an enum an index and indexes its values.
    private mutating func register(_ description: EnumDescription, scope: String) throws(ProtoJSONError) {
        let fullName = scope + description.name
        guard !WellKnownType.unsupportedNames.contains(fullName) else {
            throw ProtoJSONError(field: fullName, "this well-known type's JSON form is not supported")
        }
        guard messageIndexByName[fullName] == nil, enumIndexByName[fullName] == nil else {
            throw ProtoJSONError(field: fullName, "type defined twice")
        }
        var nameByNumber: [Int32: String] = [:]
        var numberByName: [String: Int32] = [:]
        for value in description.values {
            if nameByNumber[value.number] == nil { nameByNumber[value.number] = value.name }
            numberByName[value.name] = value.number
        }
        enumIndexByName[fullName] = enums.count
        enums.append(EnumSchema(fullName: fullName, nameByNumber: nameByNumber, numberByName: numberByName))
    }

    /// Records a service's methods under their HTTP paths.
    private mutating func register(_ service: ServiceDescription, package: String) throws(ProtoJSONError) {
        let serviceName = package.isEmpty ? service.name : package + "." + service.name
        for method in service.methods {
            let input = Self.withoutLeadingDot(method.inputType)
            let output = Self.withoutLeadingDot(method.outputType)
            guard messageIndexByName[input] != nil, messageIndexByName[output] != nil else {
                throw ProtoJSONError(field: serviceName + "." + method.name, "request or response type not defined")
            }
            let path = "/\(serviceName)/\(method.name)"
            methodsByPath[path] = ProtoJSONMethod(
                path: path, inputType: input, outputType: output, clientStreaming: method.clientStreaming,
                serverStreaming: method.serverStreaming, hasNoSideEffects: method.idempotencyLevel == 1)
        }
    }

    /// Resolves a message's fields against the registered types.
    private func resolve(
        _ message: MessageDescription, fullName: String, syntax: String
    ) throws(ProtoJSONError) -> MessageSchema {
        var fields: [FieldSchema] = []
        for field in message.fields {
            let kind = try kind(of: field, in: fullName)
            let isRepeated = field.label == 3
            var isMap = false
            if isRepeated, case .message(let index) = kind { isMap = pendingMessages[index].description.isMapEntry }
            if let oneof = field.oneofIndex, !message.oneofNames.indices.contains(oneof) {
                throw ProtoJSONError(field: fullName + "." + field.name, "oneof index out of range")
            }
            let isMessage = if case .message = kind { true } else { false }
            let hasPresence = !isRepeated && (isMessage || field.oneofIndex != nil || syntax != "proto3")
            fields.append(
                FieldSchema(
                    name: field.name, jsonName: field.jsonName ?? Self.jsonName(of: field.name),
                    number: Int(field.number),
                    kind: kind, isRepeated: isRepeated, isMap: isMap, hasPresence: hasPresence,
                    oneofIndex: field.oneofIndex))
        }
        return MessageSchema(
            fullName: fullName, fields: fields, oneofNames: message.oneofNames, isMapEntry: message.isMapEntry)
    }

    /// The kind of a field, with its message or enum type looked up.
    private func kind(of field: FieldDescription, in messageName: String) throws(ProtoJSONError) -> FieldKind {
        if let scalar = FieldKind(scalarType: field.type) { return scalar }
        let typeName = Self.withoutLeadingDot(field.typeName)
        if field.type == 11 || field.type == 0, let index = messageIndexByName[typeName] { return .message(index) }
        if field.type == 14 || field.type == 0, let index = enumIndexByName[typeName] { return .enumeration(index) }
        if field.type == 10 { throw ProtoJSONError(field: messageName + "." + field.name, "groups are not supported") }
        throw ProtoJSONError(field: messageName + "." + field.name, "type \(field.typeName) not defined")
    }

    /// The JSON name protoc gives a field: underscores dropped, the letter after each one capitalised.
    static func jsonName(of name: String) -> String {
        var result = ""
        var capitalizeNext = false
        for character in name {
            if character == "_" {
                capitalizeNext = true
            } else if capitalizeNext {
                result += character.uppercased()
                capitalizeNext = false
            } else {
                result.append(character)
            }
        }
        return result
    }

    /// A type name without the leading dot descriptors give fully qualified names.
    private static func withoutLeadingDot(_ name: String) -> String {
        name.hasPrefix(".") ? String(name.dropFirst()) : name
    }
}
