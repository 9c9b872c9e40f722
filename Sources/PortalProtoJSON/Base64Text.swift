import PortalRPC

/// Base64 as proto3 JSON spells `bytes`: standard with padding out, standard or URL-safe, padded or not, in.
enum Base64Text {
    /// The standard alphabet with padding.
    static func encode(_ bytes: ArraySlice<UInt8>) -> String { Base64.encode(Array(bytes), padding: true) }

    /// Decodes either alphabet, with or without padding; any other character is an error.
    static func decode(_ text: String) throws(ProtoJSONError) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(text.utf8.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        var symbols = 0
        var padding = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: "=") {
                padding += 1
                continue
            }
            guard padding == 0, let value = sextet(byte) else { throw ProtoJSONError("expected base64 text") }
            symbols += 1
            accumulator = (accumulator << 6) | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        guard symbols % 4 != 1, padding == 0 || (symbols + padding) % 4 == 0, padding <= 2 else {
            throw ProtoJSONError("expected base64 text")
        }
        return output
    }

    private static func sextet(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"), UInt8(ascii: "-"): 62
        case UInt8(ascii: "/"), UInt8(ascii: "_"): 63
        default: nil
        }
    }
}
