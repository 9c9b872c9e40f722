/// Appends protobuf wire-format values to a byte buffer.
struct WireWriter {
    /// The bytes written so far.
    private(set) var bytes: [UInt8] = []

    /// Appends a base-128 varint.
    mutating func writeVarint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    /// Appends a field tag.
    mutating func writeTag(_ number: Int, _ wireType: WireType) {
        writeVarint(UInt64(number) << 3 | UInt64(wireType.rawValue))
    }

    /// Appends four little-endian bytes.
    mutating func writeFixed32(_ value: UInt32) {
        for offset in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * offset))) }
    }

    /// Appends eight little-endian bytes.
    mutating func writeFixed64(_ value: UInt64) {
        for offset in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * offset))) }
    }

    /// Appends a length prefix and the bytes it covers.
    mutating func writeLengthDelimited(_ payload: [UInt8]) {
        writeVarint(UInt64(payload.count))
        bytes += payload
    }

    /// Appends already encoded bytes.
    mutating func writeRaw(_ payload: [UInt8]) { bytes += payload }
}
