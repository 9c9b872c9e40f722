/// The `grpc-timeout` header: a positive integer of at most 8 digits and a unit letter.
public enum GRPCTimeout {
    /// Parses a header value such as `100m` or `5S`; nil when it is malformed.
    public static func parse(_ value: String) -> Duration? {
        guard let unit = value.last, value.count >= 2, value.count <= 9,
            let amount = Int64(value.dropLast()), amount >= 0
        else { return nil }
        switch unit {
        case "H": return .seconds(amount * 3600)
        case "M": return .seconds(amount * 60)
        case "S": return .seconds(amount)
        case "m": return .milliseconds(amount)
        case "u": return .microseconds(amount)
        case "n": return .nanoseconds(amount)
        default: return nil
        }
    }

    /// Formats a duration with the finest unit that fits in 8 digits.
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let nanos = max(0, seconds) * 1_000_000_000 + max(0, attoseconds) / 1_000_000_000
        let units: [(Character, Int64)] = [
            ("n", 1), ("u", 1_000), ("m", 1_000_000), ("S", 1_000_000_000), ("M", 60_000_000_000),
            ("H", 3_600_000_000_000),
        ]
        for (letter, scale) in units {
            let amount = (nanos + scale - 1) / scale
            if amount < 100_000_000 { return "\(amount)\(letter)" }
        }
        return "99999999H"
    }
}
