/// RFC 3339 text for `google.protobuf.Timestamp`, from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
enum TimestampText {
    /// The earliest and latest seconds a timestamp may hold.
    static let validSeconds: ClosedRange<Int64> = -62_135_596_800...253_402_300_799

    /// UTC text with `Z` and 0, 3, 6 or 9 fractional digits, as few as the nanoseconds need.
    static func format(seconds: Int64, nanos: Int32) throws(ProtoJSONError) -> String {
        guard validSeconds.contains(seconds), (0...999_999_999).contains(nanos) else {
            throw ProtoJSONError("timestamp out of range (seconds \(seconds), nanos \(nanos))")
        }
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        var text = padded(year, 4) + "-" + padded(month, 2) + "-" + padded(day, 2) + "T"
        text +=
            padded(secondOfDay / 3600, 2) + ":" + padded(secondOfDay / 60 % 60, 2) + ":" + padded(secondOfDay % 60, 2)
        if nanos == 0 {
        } else if nanos % 1_000_000 == 0 {
            text += "." + padded(Int64(nanos / 1_000_000), 3)
        } else if nanos % 1000 == 0 {
            text += "." + padded(Int64(nanos / 1000), 6)
        } else {
            text += "." + padded(Int64(nanos), 9)
        }
        return text + "Z"
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` with up to nine fractional digits.
    static func parse(_ text: String) throws(ProtoJSONError) -> (seconds: Int64, nanos: Int32) {
        let invalid = ProtoJSONError("expected an RFC 3339 timestamp")
        let bytes = Array(text.utf8)
        var position = 0
        func number(_ width: Int) throws(ProtoJSONError) -> Int64 {
            guard position + width <= bytes.count else { throw invalid }
            var value: Int64 = 0
            for byte in bytes[position..<(position + width)] {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { throw invalid }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            }
            position += width
            return value
        }
        func expect(_ character: Unicode.Scalar) throws(ProtoJSONError) {
            guard position < bytes.count, bytes[position] == UInt8(ascii: character) else { throw invalid }
            position += 1
        }
        let year = try number(4)
        try expect("-")
        let month = try number(2)
        try expect("-")
        let day = try number(2)
        try expect("T")
        let hour = try number(2)
        try expect(":")
        let minute = try number(2)
        try expect(":")
        let second = try number(2)
        var nanos: Int64 = 0
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            var digits = 0
            while position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") {
                guard digits < 9 else {
                    throw ProtoJSONError("expected an RFC 3339 timestamp with at most nine fractional digits")
                }
                nanos = nanos * 10 + Int64(bytes[position] - UInt8(ascii: "0"))
                digits += 1
                position += 1
            }
            guard digits > 0 else { throw invalid }
            for _ in digits..<9 { nanos *= 10 }
        }
        var offsetSeconds: Int64 = 0
        guard position < bytes.count else { throw invalid }
        if bytes[position] == UInt8(ascii: "Z") {
            position += 1
        } else {
            let sign: Int64 = bytes[position] == UInt8(ascii: "+") ? 1 : bytes[position] == UInt8(ascii: "-") ? -1 : 0
            guard sign != 0 else { throw invalid }
            position += 1
            let offsetHours = try number(2)
            try expect(":")
            let offsetMinutes = try number(2)
            guard offsetHours <= 23, offsetMinutes <= 59 else { throw invalid }
            offsetSeconds = sign * (offsetHours * 3600 + offsetMinutes * 60)
        }
        guard position == bytes.count, (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
            hour <= 23, minute <= 59, second <= 59
        else { throw invalid }
        let seconds =
            daysSinceEpoch(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second
            - offsetSeconds
        guard validSeconds.contains(seconds) else {
            throw ProtoJSONError("timestamp out of range (0001-01-01 to 9999-12-31)")
        }
        return (seconds, Int32(nanos))
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysSinceEpoch(year: Int64, month: Int64, day: Int64) -> Int64 {
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's algorithm).
    static func civilDate(daysSinceEpoch days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    private static func padded(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
