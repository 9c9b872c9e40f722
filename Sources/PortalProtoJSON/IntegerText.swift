/// Reads an integer from JSON number text exactly, allowing fractions and exponents that leave it whole (`1e2`, `5.0`).
enum IntegerText {
    /// The sign and magnitude of the integer `text` (RFC 8259 number grammar) denotes.
    static func parse(_ text: String) throws(ProtoJSONError) -> (isNegative: Bool, magnitude: UInt64) {
        var utf8 = Substring(text).utf8[...]
        let isNegative = utf8.first == UInt8(ascii: "-")
        if isNegative { utf8 = utf8.dropFirst() }
        let digitBytes = UInt8(ascii: "0")...UInt8(ascii: "9")
        let integerPart = utf8.prefix { digitBytes.contains($0) }
        utf8 = utf8.dropFirst(integerPart.count)
        var fractionPart = utf8.prefix(0)
        if utf8.first == UInt8(ascii: ".") {
            utf8 = utf8.dropFirst()
            fractionPart = utf8.prefix { digitBytes.contains($0) }
            utf8 = utf8.dropFirst(fractionPart.count)
        }
        var exponent = 0
        if let marker = utf8.first, marker == UInt8(ascii: "e") || marker == UInt8(ascii: "E") {
            utf8 = utf8.dropFirst()
            let negativeExponent = utf8.first == UInt8(ascii: "-")
            if utf8.first == UInt8(ascii: "-") || utf8.first == UInt8(ascii: "+") { utf8 = utf8.dropFirst() }
            for digit in utf8 {
                exponent = min(exponent * 10 + Int(digit - UInt8(ascii: "0")), 1_000_000)
            }
            if negativeExponent { exponent = -exponent }
        }
        var digits = Array(integerPart) + Array(fractionPart)
        exponent -= fractionPart.count
        while let first = digits.first, first == UInt8(ascii: "0") { digits.removeFirst() }
        if digits.isEmpty { return (false, 0) }
        if exponent < 0 {
            let dropped = -exponent
            guard dropped <= digits.count, digits.suffix(dropped).allSatisfy({ $0 == UInt8(ascii: "0") }) else {
                throw ProtoJSONError("expected an integer, not \(text)")
            }
            digits.removeLast(dropped)
            exponent = 0
        }
        guard digits.count + exponent <= 20 else { throw ProtoJSONError("integer \(text) out of range") }
        var magnitude: UInt64 = 0
        for digit in digits + Array(repeating: UInt8(ascii: "0"), count: exponent) {
            let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(digit - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { throw ProtoJSONError("integer \(text) out of range") }
            magnitude = sum
        }
        return (isNegative, magnitude)
    }

    /// The signed integer `text` denotes, checked against `range`.
    static func signed(_ text: String, in range: ClosedRange<Int64>) throws(ProtoJSONError) -> Int64 {
        let (isNegative, magnitude) = try parse(text)
        let value: Int64
        if isNegative {
            guard magnitude <= UInt64(Int64.max) + 1 else { throw ProtoJSONError("integer \(text) out of range") }
            value = magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        } else {
            guard magnitude <= UInt64(Int64.max) else { throw ProtoJSONError("integer \(text) out of range") }
            value = Int64(magnitude)
        }
        guard range.contains(value) else { throw ProtoJSONError("integer \(text) out of range") }
        return value
    }

    /// The unsigned integer `text` denotes, checked against `0...maximum`.
    static func unsigned(_ text: String, maximum: UInt64) throws(ProtoJSONError) -> UInt64 {
        let (isNegative, magnitude) = try parse(text)
        guard !isNegative || magnitude == 0, magnitude <= maximum else {
            throw ProtoJSONError("integer \(text) out of range")
        }
        return magnitude
    }
}
