/// The well-known types whose JSON form is not a plain object of their fields.
enum WellKnownType: String, Sendable {
    /// An RFC 3339 string.
    case timestamp = "google.protobuf.Timestamp"
    /// An object of the packed message's fields (or its JSON under "value") with an "@type" URL.
    case any = "google.protobuf.Any"

    /// Well-known types with a special JSON form that this codec does not convert; files that define them are refused.
    static let unsupportedNames: Set<String> = [
        "google.protobuf.Duration", "google.protobuf.FieldMask", "google.protobuf.Struct", "google.protobuf.Value",
        "google.protobuf.ListValue", "google.protobuf.NullValue", "google.protobuf.DoubleValue",
        "google.protobuf.FloatValue",
        "google.protobuf.Int64Value", "google.protobuf.UInt64Value", "google.protobuf.Int32Value",
        "google.protobuf.UInt32Value",
        "google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue",
    ]
}
