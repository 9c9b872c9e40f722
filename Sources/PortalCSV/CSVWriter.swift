import Foundation

/// Builds RFC 4180 CSV text: comma-separated, CRLF line ends, cells quoted when they need it, and
/// cells that a spreadsheet would run as a formula neutralised with a leading apostrophe.
public struct CSVWriter: Sendable {
    /// The text so far.
    public private(set) var text = ""

    /// An empty writer.
    public init() {}

    /// Appends one row.
    public mutating func appendRow(_ cells: [String]) {
        text += cells.map(Self.cell).joined(separator: ",") + "\r\n"
    }

    /// Takes the text written so far as UTF-8 bytes, leaving the writer empty.
    public mutating func takeBytes() -> [UInt8] {
        defer { text = "" }
        return Array(text.utf8)
    }

    /// One cell: formula-neutralised, then quoted when it holds a comma, quote or line break.
    public static func cell(_ value: String) -> String {
        var value = value
        if let first = value.unicodeScalars.first, ["=", "+", "-", "@", "\t", "\r"].contains(first) {
            value = "'" + value
        }
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// Formats times as the portal shows them: `05 Mar 2026, 14:07:09`, in UTC or a named IANA zone.
///
/// Holds one formatter; create one per export rather than sharing it between tasks.
public struct PortalTimeFormat {
    private let formatter: DateFormatter

    /// A format in `timeZoneIdentifier` (empty for UTC); nil when the identifier is not an IANA zone.
    public init?(timeZoneIdentifier: String) {
        let zone: TimeZone
        if timeZoneIdentifier.isEmpty || timeZoneIdentifier == "UTC" {
            zone = TimeZone(identifier: "UTC")!
        } else {
            guard TimeZone.knownTimeZoneIdentifiers.contains(timeZoneIdentifier), let named = TimeZone(identifier: timeZoneIdentifier) else {
                return nil
            }
            zone = named
        }
        formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = zone
        formatter.dateFormat = "dd MMM yyyy, HH:mm:ss"
    }

    /// The text of a time given in milliseconds since the epoch.
    public func format(milliseconds: Int64) -> String {
        formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }
}
