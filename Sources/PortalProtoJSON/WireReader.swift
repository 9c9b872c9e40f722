/// Reads protobuf wire-format values from a range of a byte buffer.
struct WireReader {
    /// The whole buffer; the reader sees only `position..<end` of it.
    let bytes: [UInt8]
    /// The next byte to read.
    private(set) var position: Int
    /// One past the last byte this reader may read.
    let end: Int

    /// A reader over `range` of `bytes`.
    init(_ bytes: [UInt8], range: Range<Int>) {
        self.bytes = bytes
        position = range.lowerBound
        end = range.upperBound
    }

    /// A reader over all of `bytes`.
    init(_ bytes: [UInt8]) { self.init(bytes, range: 0..<bytes.count) }

    /// Whether every byte has been read.
    var isAtEnd: Bool { position >= end }

    /// Reads a base-128 varint of at most ten bytes (bits past the 64th are dropped).
    mutating func readVarint() throws(ProtoJSONError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while shift < 70 {
            guard position < end else { throw ProtoJSONError("truncated varint") }
            let byte = bytes[position]
            position += 1
            if shift < 64 { result |= UInt64(byte & 0x7F) << shift }
            if byte < 0x80 { return result }
            shift += 7
        }
        throw ProtoJSONError("varint longer than ten bytes")
    }

    /// Reads a field tag: the field number and the wire type of its value.
    mutating func readTag() throws(ProtoJSONError) -> (number: Int, wireType: WireType) {
        let tag = try readVarint()
        guard tag >> 3 != 0, tag >> 3 <= 536_870_911 else { throw ProtoJSONError("invalid field number \(tag >> 3)") }
        guard let wireType = WireType(rawValue: UInt8(tag & 7)) else {
            throw ProtoJSONError("invalid wire type \(tag & 7)")
        }
        return (Int(tag >> 3), wireType)
    }

    /// Reads four little-endian bytes.
    mutating func readFixed32() throws(ProtoJSONError) -> UInt32 {
        guard end - position >= 4 else { throw ProtoJSONError("truncated fixed32 value") }
        var value: UInt32 = 0
        for offset in 0..<4 { value |= UInt32(bytes[position + offset]) << (8 * offset) }
        position += 4
        return value
    }

    /// Reads eight little-endian bytes.
    mutating func readFixed64() throws(ProtoJSONError) -> UInt64 {
        guard end - position >= 8 else { throw ProtoJSONError("truncated fixed64 value") }
        var value: UInt64 = 0
        for offset in 0..<8 { value |= UInt64(bytes[position + offset]) << (8 * offset) }
        position += 8
        return value
    }

    /// Reads a length prefix and returns the range of the bytes it covers.
    mutating func readLengthDelimited() throws(ProtoJSONError) -> Range<Int> {
        let length = try readVarint()
        guard length <= UInt64(end - position) else { throw ProtoJSONError("truncated length-delimited value") }
        let range = position..<(position + Int(length))
        position = range.upperBound
        return range
    }

    /// Skips the value of a field of the given wire type (a group up to its matching end).
    mutating func skip(_ wireType: WireType, number: Int, depth: Int = 0) throws(ProtoJSONError) {
        switch wireType {
        case .varint: _ = try readVarint()
        case .fixed64: _ = try readFixed64()
        case .fixed32: _ = try readFixed32()
        case .lengthDelimited: _ = try readLengthDelimited()
        case .endGroup: throw ProtoJSONError("unexpected end of group")
        case .startGroup:
            guard depth < ProtoJSONLimits.maximumDepth else { throw ProtoJSONError("groups nested too deeply") }
            while true {
                let tag = try readTag()
                if tag.wireType == .endGroup {
                    guard tag.number == number else { throw ProtoJSONError("mismatched end of group") }
                    return
                }
                try skip(tag.wireType, number: tag.number, depth: depth + 1)
            }
        }
    }
}
