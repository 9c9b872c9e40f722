/// Conversions between `google.protobuf.Timestamp` and seconds since the Unix epoch.
extension Google_Protobuf_Timestamp {
    /// A timestamp `seconds` and `nanos` after 1970-01-01T00:00:00Z.
    public init(seconds: Int64, nanos: Int32 = 0) {
        self.init()
        self.seconds = seconds
        self.nanos = nanos
    }

    /// A timestamp from fractional seconds since the Unix epoch.
    public init(secondsSince1970 value: Double) {
        let whole = value.rounded(.down)
        self.init(seconds: Int64(whole), nanos: Int32(((value - whole) * 1_000_000_000).rounded()))
    }

    /// A timestamp from whole milliseconds since the Unix epoch, as the services store time.
    public init(milliseconds: Int64) {
        let seconds = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000
        self.init(seconds: seconds, nanos: Int32(milliseconds - seconds * 1000) * 1_000_000)
    }

    /// Whole milliseconds since the Unix epoch (finer digits are dropped).
    public var milliseconds: Int64 {
        seconds * 1000 + Int64(nanos / 1_000_000)
    }

    /// Fractional seconds since the Unix epoch.
    public var secondsSince1970: Double {
        Double(seconds) + Double(nanos) / 1_000_000_000
    }

    /// Whether the value is one the well-known type allows: 0001-01-01 to 9999-12-31, nanos in 0..<1e9.
    public var isValid: Bool {
        (-62_135_596_800...253_402_300_799).contains(seconds) && (0..<1_000_000_000).contains(nanos)
    }
}
