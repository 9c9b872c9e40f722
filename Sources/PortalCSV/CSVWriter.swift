import Foundation

/// Builds RFC 4180 CSV text: comma-separated, CRLF line ends, cells quoted when they need it, and
/// cells that a spreadsheet would run as a formula neutralised with a leading apostrophe.
public struct CSVWriter: Sendable {
    private var bytes: [UInt8] = []

    /// An empty writer.
    public init() {}

    /// Appends one row.
    public mutating func appendRow(_ cells: [String]) {
        for (index, cell) in cells.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            Self.append(cell, to: &bytes)
        }
        bytes.append(contentsOf: [UInt8(ascii: "\r"), UInt8(ascii: "\n")])
    }

    /// Bytes written and not yet taken.
    public var byteCount: Int { bytes.count }

    /// Takes the text written so far as UTF-8 bytes, leaving the writer empty.
    public mutating func takeBytes() -> [UInt8] {
        defer { bytes.removeAll(keepingCapacity: true) }
        return bytes
    }

    /// One cell: formula-neutralised, then quoted when it holds a comma, quote or line break.
    public static func cell(_ value: String) -> String {
        var bytes: [UInt8] = []
        append(value, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes one cell's UTF-8. Every character it looks for is ASCII, and an ASCII byte in UTF-8 is
    /// always a whole scalar, so checking bytes is checking scalars ("\r\n", or a comma followed by a
    /// combining mark, is one Character but two scalars).
    private static func append(_ value: String, to bytes: inout [UInt8]) {
        var value = value
        value.withUTF8 { utf8 in
            let neutralise = utf8.first.map(formulaStarts.contains) ?? false
            let quote = utf8.contains {
                $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\n")
                    || $0 == UInt8(ascii: "\r")
            }
            if quote { bytes.append(UInt8(ascii: "\"")) }
            if neutralise { bytes.append(UInt8(ascii: "'")) }
            if quote {
                for byte in utf8 {
                    bytes.append(byte)
                    if byte == UInt8(ascii: "\"") { bytes.append(byte) }
                }
                bytes.append(UInt8(ascii: "\""))
            } else {
                bytes.append(contentsOf: utf8)
            }
        }
    }

    /// First characters that make a spreadsheet run a cell as a formula.
    private static let formulaStarts: Set<UInt8> = [
        UInt8(ascii: "="), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "@"), UInt8(ascii: "\t"),
        UInt8(ascii: "\r"),
    ]
}

/// Formats times as the portal shows them: `05 Mar 2026, 14:07:09`, in UTC or a named IANA zone.
///
/// UTC is computed directly (exports format a million of these); other zones go through a
/// `DateFormatter`, so create one format per export and use it from one task at a time (as
/// `CSVExport` does, formatting one batch after another) rather than from several at once.
public struct PortalTimeFormat: @unchecked Sendable {
    private let formatter: DateFormatter?
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// A format in `timeZoneIdentifier` (empty for UTC); nil when the identifier is not an IANA zone.
    public init?(timeZoneIdentifier: String) {
        if timeZoneIdentifier.isEmpty || timeZoneIdentifier == "UTC" || timeZoneIdentifier == "Etc/UTC" {
            formatter = nil
            return
        }
        guard let zone = TimeZone(identifier: timeZoneIdentifier) else { return nil }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = zone
        formatter.dateFormat = "dd MMM yyyy, HH:mm:ss"
        self.formatter = formatter
    }

    /// The text of a time given in milliseconds since the epoch.
    public func format(milliseconds: Int64) -> String {
        let seconds = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000
        if let formatter {
            return formatter.string(from: Date(timeIntervalSince1970: Double(seconds)))
        }
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm), proleptic Gregorian, UTC.
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return
            "\(two(day)) \(Self.months[Int(month - 1)]) \(year), \(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60))"
    }
}
