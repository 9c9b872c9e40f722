/// One proto file's serialized `FileDescriptorProto`, with what server reflection looks up in it.
public struct ProtoFileDescriptor: Sendable {
    /// The file name relative to the proto root, for example `grpc/health/v1/health.proto`.
    public let name: String
    /// The files it imports.
    public let dependencies: [String]
    /// Fully qualified names of the services it defines.
    public let services: [String]
    /// Fully qualified names of every message, enum, service and method it defines.
    public let symbols: [String]
    /// The serialized `google.protobuf.FileDescriptorProto`.
    public let serialized: [UInt8]

    /// Creates a descriptor record from base64 text (whitespace ignored), as generated code stores it.
    public init(name: String, dependencies: [String], services: [String], symbols: [String], base64: String) {
        self.name = name
        self.dependencies = dependencies
        self.services = services
        self.symbols = symbols
        serialized = Base64.decode(base64)
    }
}
