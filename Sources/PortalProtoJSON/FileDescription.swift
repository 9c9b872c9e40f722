/// The parts of a `google.protobuf.FileDescriptorProto` that JSON conversion needs.
struct FileDescription {
    /// The file name, for error messages.
    var name = ""
    /// The proto package, `portal.testing.v1`.
    var package = ""
    /// `proto2` (also when absent), `proto3` or `editions`.
    var syntax = ""
    /// The top-level messages.
    var messages: [MessageDescription] = []
    /// The top-level enums.
    var enums: [EnumDescription] = []
    /// The services.
    var services: [ServiceDescription] = []
}

/// A `DescriptorProto`: one message type and the types nested in it.
struct MessageDescription {
    /// The short name.
    var name = ""
    /// The fields in declaration order.
    var fields: [FieldDescription] = []
    /// Messages declared inside this one (map entries among them).
    var nestedMessages: [MessageDescription] = []
    /// Enums declared inside this one.
    var nestedEnums: [EnumDescription] = []
    /// The names of the oneofs, indexed by `FieldDescription.oneofIndex`.
    var oneofNames: [String] = []
    /// Whether `MessageOptions.map_entry` is set: the synthetic entry type of a map field.
    var isMapEntry = false
}

/// A `FieldDescriptorProto`.
struct FieldDescription {
    /// The name as declared in the proto file.
    var name = ""
    /// The field number.
    var number: Int32 = 0
    /// `LABEL_OPTIONAL` 1, `LABEL_REQUIRED` 2 or `LABEL_REPEATED` 3.
    var label: Int32 = 1
    /// The `FieldDescriptorProto.Type` number (1 double … 18 sint64).
    var type: Int32 = 0
    /// The message or enum type, fully qualified with a leading dot.
    var typeName = ""
    /// The JSON name protoc computed, when the descriptor carries it.
    var jsonName: String?
    /// The oneof this field belongs to, as an index into `MessageDescription.oneofNames`.
    var oneofIndex: Int?
    /// Whether this is a proto3 `optional` field (a member of a synthetic oneof).
    var isProto3Optional = false
}

/// An `EnumDescriptorProto`.
struct EnumDescription {
    /// The short name.
    var name = ""
    /// The values in declaration order.
    var values: [(name: String, number: Int32)] = []
}

/// A `ServiceDescriptorProto`.
struct ServiceDescription {
    /// The short name.
    var name = ""
    /// The methods in declaration order.
    var methods: [MethodDescription] = []
}

/// A `MethodDescriptorProto`.
struct MethodDescription {
    /// The short name.
    var name = ""
    /// The request type, fully qualified with a leading dot.
    var inputType = ""
    /// The response type, fully qualified with a leading dot.
    var outputType = ""
    /// Whether the client streams requests.
    var clientStreaming = false
    /// Whether the server streams responses.
    var serverStreaming = false
    /// `MethodOptions.idempotency_level`: 0 unknown, 1 no side effects, 2 idempotent.
    var idempotencyLevel: UInt64 = 0
}
