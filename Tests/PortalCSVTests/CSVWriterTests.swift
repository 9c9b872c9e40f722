import Foundation
import PortalCSV
import Testing

@Suite("CSV exports")
struct CSVWriterTests {
    @Test func cellsAreQuotedOnlyWhenTheyNeedIt() {
        #expect(CSVWriter.cell("plain") == "plain")
        #expect(CSVWriter.cell("a, b") == "\"a, b\"")
        #expect(CSVWriter.cell("say \"hi\"") == "\"say \"\"hi\"\"\"")
        #expect(CSVWriter.cell("two\nlines") == "\"two\nlines\"")
        #expect(CSVWriter.cell("windows\r\nline") == "\"windows\r\nline\"")  // "\r\n" is one Character
        #expect(CSVWriter.cell("A,\u{301}B") == "\"A,\u{301}B\"")  // a comma carrying a combining mark
        #expect(CSVWriter.cell("say \"\u{301}hi") == "\"say \"\"\u{301}hi\"")
    }

    @Test(arguments: ["=SUM(A1)", "+1", "-2", "@cmd", "\tx", "\rx"])
    func formulaLikeCellsAreNeutralised(value: String) {
        #expect(CSVWriter.cell(value).replacingOccurrences(of: "\"", with: "").hasPrefix("'"))
    }

    @Test func rowsEndWithCRLF() {
        var writer = CSVWriter()
        writer.appendRow(["Date & Time", "Message"])
        writer.appendRow(["05 Mar 2026, 14:07:09", "x"])
        #expect(
            String(decoding: writer.takeBytes(), as: UTF8.self)
                == "Date & Time,Message\r\n\"05 Mar 2026, 14:07:09\",x\r\n")
        #expect(writer.takeBytes().isEmpty)
    }

    @Test func timesUseThePortalFormatInTheRequestedZone() throws {
        let march5 = Int64(1_772_719_629_000)  // 2026-03-05T14:07:09Z
        #expect(
            try #require(PortalTimeFormat(timeZoneIdentifier: "")).format(milliseconds: march5)
                == "05 Mar 2026, 14:07:09")
        #expect(
            try #require(PortalTimeFormat(timeZoneIdentifier: "Asia/Tokyo")).format(milliseconds: march5)
                == "05 Mar 2026, 23:07:09")
        #expect(PortalTimeFormat(timeZoneIdentifier: "Mars/Olympus") == nil)
    }
}

@Suite("UTC formatting agrees with the calendar")
struct UTCFormatTests {
    @Test func utcFormattingMatchesFoundationOverCenturies() throws {
        let utc = try #require(PortalTimeFormat(timeZoneIdentifier: ""))
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "dd MMM yyyy, HH:mm:ss"
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let seconds = Int64.random(in: -2_208_988_800...4_102_444_800, using: &generator)  // 1900 to 2100
            #expect(
                utc.format(milliseconds: seconds * 1000)
                    == formatter.string(from: Date(timeIntervalSince1970: Double(seconds))))
        }
    }
}
