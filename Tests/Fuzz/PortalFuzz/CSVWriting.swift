import PortalCSV

/// The CSV writer: rows and cells taken from the input (0x01 ends a row, 0x00 a cell) are written and
/// read back with an RFC 4180 reader; every cell must come back as written, with an apostrophe in
/// front of those a spreadsheet would run as a formula.
enum CSVWriting {

    static func run(_ input: [UInt8]) {
        let rows: [[String]] = input.split(separator: 1, omittingEmptySubsequences: false).map { row in
            row.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        }
        var writer = CSVWriter()
        for row in rows { writer.appendRow(row) }
        let parsed = parse(writer.takeBytes())
        let expected = rows.map { row in
            row.map { cell in formulaStarts.contains(cell.utf8.first ?? 0) ? "'" + cell : cell }
        }
        require(
            parsed.map { $0.map { Array($0.utf8) } } == expected.map { $0.map { Array($0.utf8) } },
            "CSV did not read back as written")
    }

    static let formulaStarts: Set<UInt8> = Set("=+-@\t\r".utf8)

    /// An RFC 4180 reader: CRLF ends a row, quoted cells may hold commas, quotes (doubled) and line breaks.
    static func parse(_ bytes: [UInt8]) -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var cell: [UInt8] = []
        var index = 0
        var quoted = false
        while index < bytes.count {
            let byte = bytes[index]
            if quoted {
                if byte == UInt8(ascii: "\"") {
                    if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\"") {
                        cell.append(byte)
                        index += 1
                    } else {
                        quoted = false
                    }
                } else {
                    cell.append(byte)
                }
            } else if byte == UInt8(ascii: "\""), cell.isEmpty {
                quoted = true
            } else if byte == UInt8(ascii: ",") {
                row.append(String(decoding: cell, as: UTF8.self))
                cell = []
            } else if byte == UInt8(ascii: "\r"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\n") {
                row.append(String(decoding: cell, as: UTF8.self))
                rows.append(row)
                row = []
                cell = []
                index += 1
            } else {
                cell.append(byte)
            }
            index += 1
        }
        return rows
    }
}
