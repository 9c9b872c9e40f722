/// A failed call: a status code, a message for people and optional structured details.
///
/// Handlers throw it to choose the status a client sees; clients receive it for every non-OK status.
public struct RPCError: Error, Sendable, CustomStringConvertible {
    /// The status code.
    public var code: RPCStatusCode
    /// A human-readable message, sent as `grpc-message`.
    public var message: String
    /// Structured details sent in `grpc-status-details-bin` as a `google.rpc.Status`.
    public var details: [RPCErrorDetail]
    /// Trailing metadata to send (server) or that was received (client).
    public var metadata: Metadata
    /// The error that caused this one, if any; never sent to the peer.
    public var cause: (any Error)?

    /// Creates an error.
    public init(_ code: RPCStatusCode, _ message: String, details: [RPCErrorDetail] = [], metadata: Metadata = [:], cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.details = details
        self.metadata = metadata
        self.cause = cause
    }

    /// `CODE: message`.
    public var description: String {
        message.isEmpty ? code.description : "\(code): \(message)"
    }

    /// An `INVALID_ARGUMENT` error that names the offending field.
    public static func invalidArgument(field: String, _ problem: String) -> RPCError {
        RPCError(.invalidArgument, "\(field): \(problem)")
    }

    /// A caller's value quoted for an error message: its first `limit` characters, then "…", so an
    /// error never grows with its input.
    public static func quote(_ value: String, limit: Int = 64) -> String {
        guard value.unicodeScalars.count > limit else { return "\"\(value)\"" }
        var scalars = String.UnicodeScalarView()
        scalars.append(contentsOf: value.unicodeScalars.prefix(limit))
        return "\"\(String(scalars))…\""
    }
}

/// One `google.protobuf.Any` inside `google.rpc.Status.details`.
public struct RPCErrorDetail: Sendable, Hashable {
    /// The type URL, for example `type.googleapis.com/google.rpc.BadRequest`.
    public var typeURL: String
    /// The serialized message.
    public var value: [UInt8]

    /// Creates a detail from a type URL and serialized bytes.
    public init(typeURL: String, value: [UInt8]) {
        self.typeURL = typeURL
        self.value = value
    }
}
