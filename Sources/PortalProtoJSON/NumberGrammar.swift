/// The RFC 8259 number grammar, shared by the parser and by numbers given as strings.
enum NumberGrammar {
    /// The end of the number that starts at `start`, or nil when the text there is not one.
    static func endOfNumber<Bytes: RandomAccessCollection<UInt8>>(
        in bytes: Bytes, from start: Bytes.Index
    ) -> Bytes.Index? {
        var index = start
        func isDigit(_ index: Bytes.Index) -> Bool {
            index < bytes.endIndex && bytes[index] >= UInt8(ascii: "0") && bytes[index] <= UInt8(ascii: "9")
        }
        func skipDigits() {
            while isDigit(index) { index = bytes.index(after: index) }
        }
        if index < bytes.endIndex, bytes[index] == UInt8(ascii: "-") { index = bytes.index(after: index) }
        guard isDigit(index) else { return nil }
        if bytes[index] == UInt8(ascii: "0") { index = bytes.index(after: index) } else { skipDigits() }
        if index < bytes.endIndex, bytes[index] == UInt8(ascii: ".") {
            index = bytes.index(after: index)
            guard isDigit(index) else { return nil }
            skipDigits()
        }
        if index < bytes.endIndex, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index = bytes.index(after: index)
            if index < bytes.endIndex, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                index = bytes.index(after: index)
            }
            guard isDigit(index) else { return nil }
            skipDigits()
        }
        return index
    }

    /// Whether all of `text` is one number.
    static func isNumber(_ text: String) -> Bool {
        let utf8 = text.utf8
        return endOfNumber(in: Array(utf8), from: 0) == utf8.count
    }
}
