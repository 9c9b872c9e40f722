/// A failed call: a status code, a message for people and optional structured details.
///
/// Handlers throw it to choose the status a client sees; clients receive it for every non-OK status.
public struct RPCError: Error, Sendable, CustomStringConvertible {
    /// The fields, in one shared box: a call's tasks keep an optional error in their frames, and a
    /// box keeps those frames a word wide. Copied before a change when shared.
    private final class Storage: @unchecked Sendable {
        var code: RPCStatusCode
        var message: String
        var details: [RPCErrorDetail]
        var metadata: Metadata
        var cause: (any Error)?

        init(code: RPCStatusCode, message: String, details: [RPCErrorDetail], metadata: Metadata, cause: (any Error)?) {
            self.code = code
            self.message = message
            self.details = details
            self.metadata = metadata
            self.cause = cause
        }

        func copy() -> Storage {
            Storage(code: code, message: message, details: details, metadata: metadata, cause: cause)
        }
    }

    private var storage: Storage

    /// The status code.
    public var code: RPCStatusCode {
        get { storage.code }
        set { unique().code = newValue }
    }
    /// A human-readable message, sent as `grpc-message`.
    public var message: String {
        get { storage.message }
        set { unique().message = newValue }
    }
    /// Structured details sent in `grpc-status-details-bin` as a `google.rpc.Status`.
    public var details: [RPCErrorDetail] {
        get { storage.details }
        set { unique().details = newValue }
    }
    /// Trailing metadata to send (server) or that was received (client).
    public var metadata: Metadata {
        get { storage.metadata }
        set { unique().metadata = newValue }
    }
    /// The error that caused this one, if any; never sent to the peer.
    public var cause: (any Error)? {
        get { storage.cause }
        set { unique().cause = newValue }
    }

    /// Creates an error.
    public init(
        _ code: RPCStatusCode, _ message: String, details: [RPCErrorDetail] = [], metadata: Metadata = [:],
        cause: (any Error)? = nil
    ) {
        storage = Storage(code: code, message: message, details: details, metadata: metadata, cause: cause)
    }

    private mutating func unique() -> Storage {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
        return storage
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
