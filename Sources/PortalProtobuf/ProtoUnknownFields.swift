/// Wire fields a decoded message did not recognise, in the order they arrived.
public struct ProtoUnknownFields: Sendable, Hashable {
    /// One unrecognised field: its number, wire type and raw payload bytes.
    public struct Field: Sendable, Hashable {
        /// The field number.
        public var number: UInt32
        /// The protobuf wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).
        public var wireType: UInt8
        /// The payload exactly as protobuf-c keeps it (without tag, and without length prefix).
        public var data: [UInt8]

        /// Creates an unknown field record.
        public init(number: UInt32, wireType: UInt8, data: [UInt8]) {
            self.number = number
            self.wireType = wireType
            self.data = data
        }
    }

    /// The fields, in arrival order.
    public var fields: [Field]

    /// No unknown fields.
    public init() { fields = [] }

    /// Creates a set of unknown fields.
    public init(_ fields: [Field]) { self.fields = fields }

    /// Whether there are none.
    public var isEmpty: Bool { fields.isEmpty }
}
