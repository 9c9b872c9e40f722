internal import CProtobufC

/// A fixed-size protobuf scalar as protobuf-c stores it in a message struct.
public protocol ProtoScalar: Sendable, Hashable {
    /// Reads the value at `address`.
    static func load(from address: UnsafeRawPointer) -> Self
    /// Writes the value at `address`.
    func store(to address: UnsafeMutableRawPointer)
    /// The bytes one value occupies in a C array.
    static var cStride: Int { get }
}

extension ProtoScalar {
    /// Reads the value at `address`.
    @inline(__always) public static func load(from address: UnsafeRawPointer) -> Self {
        address.loadUnaligned(as: Self.self)
    }

    /// Writes the value at `address`.
    @inline(__always) public func store(to address: UnsafeMutableRawPointer) {
        address.storeBytes(of: self, as: Self.self)
    }

    /// The bytes one value occupies in a C array.
    public static var cStride: Int { MemoryLayout<Self>.stride }
}

extension Int32: ProtoScalar {}
extension Int64: ProtoScalar {}
extension UInt32: ProtoScalar {}
extension UInt64: ProtoScalar {}
extension Float: ProtoScalar {}
extension Double: ProtoScalar {}

extension Bool: ProtoScalar {
    /// protobuf-c keeps booleans as a C `int`.
    @inline(__always) public static func load(from address: UnsafeRawPointer) -> Bool {
        address.loadUnaligned(as: protobuf_c_boolean.self) != 0
    }

    /// Writes a C `int` 0 or 1.
    @inline(__always) public func store(to address: UnsafeMutableRawPointer) {
        address.storeBytes(of: self ? 1 : 0, as: protobuf_c_boolean.self)
    }

    /// The size of a C `int`.
    public static var cStride: Int { MemoryLayout<protobuf_c_boolean>.stride }
}
