/// Builds compact JSON text as UTF-8 bytes.
struct JSONWriter {
    /// The text written so far.
    private(set) var bytes: [UInt8] = []

    /// The text written so far, as a string.
    var text: String { String(decoding: bytes, as: UTF8.self) }

    /// Appends ASCII text as is: punctuation, numbers, literals.
    mutating func writeRaw(_ text: String) { bytes.append(contentsOf: text.utf8) }

    /// Appends one ASCII byte as is.
    mutating func writeByte(_ byte: UInt8) { bytes.append(byte) }

    /// Appends a quoted, escaped string.
    mutating func writeString(_ text: String) {
        var text = text
        text.withUTF8 { writeString(utf8: $0) }
    }

    /// Appends a quoted, escaped string from valid UTF-8.
    mutating func writeString<Bytes: Collection<UInt8>>(utf8: Bytes) {
        bytes.append(UInt8(ascii: "\""))
        // Most strings need no escape: copy them whole.
        if !utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            bytes.append(contentsOf: utf8)
            bytes.append(UInt8(ascii: "\""))
            return
        }
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x08: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
            case 0x0C: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
            case 0x0A: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case ..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes += [
                    UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)],
                    hex[Int(byte & 15)],
                ]
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

/// JSON text for documents written outside the codec (error bodies, log lines).
public enum JSONText {
    /// `value` as a JSON string literal, escaped as the codec escapes strings.
    public static func quoted(_ value: String) -> String {
        var writer = JSONWriter()
        writer.writeString(value)
        return writer.text
    }
}
