/// A protobuf message as an idiomatic Swift value, encoded and decoded through protobuf-c.
///
/// Generated types conform to this protocol; they describe how their fields map onto the
/// protobuf-c message layout and never touch C memory themselves.
public protocol ProtoMessage: Sendable, Equatable {
    /// The protobuf-c layout of this message type.
    static var protoLayout: ProtoLayout { get }
    /// The fully qualified protobuf name, for example `portal.testing.v1.Nested`.
    static var protoMessageName: String { get }
    /// Creates a message with every field at its default value.
    init()
    /// Copies every field out of a decoded protobuf-c message.
    init(reading reader: ProtoReader)
    /// Copies every field into a protobuf-c message that is about to be packed.
    func write(to writer: ProtoWriter)
    /// Fields this version of the schema does not know, kept so they survive a round trip.
    var unknownFields: ProtoUnknownFields { get set }
}

extension ProtoMessage {
    /// Decodes a message from its wire bytes.
    ///
    /// - Throws: `ProtoDecodingError` when the bytes are not a valid encoding of this type.
    @inlinable
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws {
        self = try ProtoCodec.decode(Self.self, from: bytes)
    }

    /// Decodes a message from its wire bytes.
    @inlinable
    public init(serializedBytes bytes: [UInt8]) throws {
        self = try bytes.withUnsafeBytes { try ProtoCodec.decode(Self.self, from: $0) }
    }

    /// Encodes the message to its wire bytes.
    @inlinable
    public func serializedBytes() -> [UInt8] {
        ProtoCodec.encode(self) { packed in [UInt8](packed) }
    }

    /// A message with its fields set by `configure`: `Request.with { $0.name = "Acme" }`.
    @inlinable
    public static func with(_ configure: (inout Self) throws -> Void) rethrows -> Self {
        var message = Self()
        try configure(&message)
        return message
    }

    /// A copy of this message changed by `change`.
    public func updating(_ change: (inout Self) throws -> Void) rethrows -> Self {
        var copy = self
        try change(&copy)
        return copy
    }

    /// Encodes the message and hands the packed bytes to `body` without an intermediate array.
    ///
    /// The buffer is only valid inside `body`.
    @inlinable
    public func withSerializedBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try ProtoCodec.encode(self, body)
    }
}

/// A protobuf enum as a Swift enum that keeps values it does not recognise.
public protocol ProtoEnum: RawRepresentable, Sendable, Hashable where RawValue == Int32 {
    /// Creates the enum from any wire value, keeping unknown ones.
    init(rawValue: Int32)
    /// The zero value, which is the protobuf default.
    init()
}

/// Thrown when bytes cannot be decoded as the requested message type.
public struct ProtoDecodingError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The fully qualified protobuf name of the message that failed to decode.
    public var messageName: String
    /// How many bytes were offered.
    public var byteCount: Int
    /// What is wrong, when known (for example which string field holds invalid UTF-8).
    public var problem: String?

    /// Creates an error.
    public init(messageName: String, byteCount: Int, problem: String? = nil) {
        self.messageName = messageName
        self.byteCount = byteCount
        self.problem = problem
    }

    /// A sentence that names the message type and, when known, the field.
    public var description: String {
        "invalid protobuf encoding of \(messageName) (\(byteCount) bytes)" + (problem.map { ": \($0)" } ?? "")
    }
}
