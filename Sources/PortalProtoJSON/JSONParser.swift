/// A strict RFC 8259 parser: no comments, no trailing commas, no duplicate keys, nesting at most 100 deep.
struct JSONParser {
    private let bytes: [UInt8]
    private var position = 0

    /// Parses a complete JSON text (UTF-8); anything but whitespace after the value is an error.
    static func parse(_ bytes: [UInt8]) throws(ProtoJSONError) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.position == bytes.count else { throw parser.syntaxError("unexpected text after the JSON value") }
        return value
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private mutating func parseValue(depth: Int) throws(ProtoJSONError) -> JSONValue {
        guard position < bytes.count else { throw syntaxError("unexpected end of JSON text") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw syntaxError("unexpected character")
        }
    }

    private mutating func parseObject(depth: Int) throws(ProtoJSONError) -> JSONValue {
        guard depth <= ProtoJSONLimits.maximumDepth else {
            throw syntaxError("JSON nested more than \(ProtoJSONLimits.maximumDepth) deep")
        }
        position += 1
        var members: [(key: String, value: JSONValue)] = []
        var keys: Set<String> = []
        skipWhitespace()
        if try consume(UInt8(ascii: "}")) { return .object(members) }
        while true {
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                throw syntaxError("expected a string key")
            }
            let key = try parseString()
            guard keys.insert(key).inserted else { throw ProtoJSONError("duplicate key").inField(key) }
            skipWhitespace()
            guard try consume(UInt8(ascii: ":")) else { throw syntaxError("expected ':'") }
            skipWhitespace()
            let value: JSONValue
            do { value = try parseValue(depth: depth) } catch { throw error.inField(key) }
            members.append((key, value))
            skipWhitespace()
            if try consume(UInt8(ascii: ",")) {
                skipWhitespace()
                continue
            }
            guard try consume(UInt8(ascii: "}")) else { throw syntaxError("expected ',' or '}'") }
            return .object(members)
        }
    }

    private mutating func parseArray(depth: Int) throws(ProtoJSONError) -> JSONValue {
        guard depth <= ProtoJSONLimits.maximumDepth else {
            throw syntaxError("JSON nested more than \(ProtoJSONLimits.maximumDepth) deep")
        }
        position += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if try consume(UInt8(ascii: "]")) { return .array(elements) }
        while true {
            do { elements.append(try parseValue(depth: depth)) } catch { throw error.atIndex(elements.count) }
            skipWhitespace()
            if try consume(UInt8(ascii: ",")) {
                skipWhitespace()
                continue
            }
            guard try consume(UInt8(ascii: "]")) else { throw syntaxError("expected ',' or ']'") }
            return .array(elements)
        }
    }

    /// Parses a string at the opening quote; the text must be valid UTF-8 with no raw control characters.
    private mutating func parseString() throws(ProtoJSONError) -> String {
        position += 1
        let start = position
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                guard let text = String(validating: bytes[start..<position], as: UTF8.self) else {
                    throw syntaxError("invalid UTF-8")
                }
                position += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            guard byte >= 0x20 else { throw syntaxError("control character in a string") }
            position += 1
        }
        var buffer = Array(bytes[start..<position])
        while position < bytes.count {
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: buffer, as: UTF8.self) else { throw syntaxError("invalid UTF-8") }
                position += 1
                return text
            case UInt8(ascii: "\\"):
                position += 1
                try appendEscape(to: &buffer)
            case ..<0x20:
                throw syntaxError("control character in a string")
            default:
                buffer.append(byte)
                position += 1
            }
        }
        throw syntaxError("unterminated string")
    }

    /// Decodes the escape after a backslash into UTF-8.
    private mutating func appendEscape(to buffer: inout [UInt8]) throws(ProtoJSONError) {
        guard position < bytes.count else { throw syntaxError("unterminated string") }
        let byte = bytes[position]
        position += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): buffer.append(byte)
        case UInt8(ascii: "b"): buffer.append(0x08)
        case UInt8(ascii: "f"): buffer.append(0x0C)
        case UInt8(ascii: "n"): buffer.append(0x0A)
        case UInt8(ascii: "r"): buffer.append(0x0D)
        case UInt8(ascii: "t"): buffer.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try parseHex4()
            if (0xD800...0xDBFF).contains(scalar) {
                guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                    bytes[position + 1] == UInt8(ascii: "u")
                else {
                    throw syntaxError("unpaired surrogate")
                }
                position += 2
                let low = try parseHex4()
                guard (0xDC00...0xDFFF).contains(low) else { throw syntaxError("unpaired surrogate") }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(scalar) {
                throw syntaxError("unpaired surrogate")
            }
            buffer.append(contentsOf: Unicode.UTF8.encode(Unicode.Scalar(scalar)!)!)
        default:
            throw syntaxError("invalid escape")
        }
    }

    private mutating func parseHex4() throws(ProtoJSONError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw syntaxError("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw syntaxError("invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    /// Parses `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` and returns its text.
    private mutating func parseNumber() throws(ProtoJSONError) -> String {
        let start = position
        guard let end = NumberGrammar.endOfNumber(in: bytes, from: position) else {
            throw syntaxError("invalid number")
        }
        position = end
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(ProtoJSONError) {
        let count = literal.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw syntaxError("unexpected end of JSON text") }
        let matches = literal.withUTF8Buffer { expected in
            (0..<count).allSatisfy { bytes[position + $0] == expected[$0] }
        }
        guard matches else { throw syntaxError("unexpected character") }
        position += count
    }

    private mutating func consume(_ byte: UInt8) throws(ProtoJSONError) -> Bool {
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    private func syntaxError(_ reason: String) -> ProtoJSONError {
        ProtoJSONError("invalid JSON at byte \(position): \(reason)")
    }
}
