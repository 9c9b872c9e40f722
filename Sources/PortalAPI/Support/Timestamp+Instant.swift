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

    /// Fractional seconds since the Unix epoch.
    public var secondsSince1970: Double {
        Double(seconds) + Double(nanos) / 1_000_000_000
    }

    /// Whether the value is one the well-known type allows: 0001-01-01 to 9999-12-31, nanos in 0..<1e9.
    public var isValid: Bool {
        (-62_135_596_800...253_402_300_799).contains(seconds) && (0..<1_000_000_000).contains(nanos)
    }
}
