import PortalProtoJSON
import PortalRPC

/// The Connect protocol's wire details: code names, HTTP statuses, error bodies and stream envelopes.
enum ConnectProtocol {
    /// The media type of unary JSON calls.
    static let unaryJSON = "application/json"
    /// The media type of streaming JSON calls.
    static let streamingJSON = "application/connect+json"
    /// The header every Connect POST carries.
    static let versionHeader = "connect-protocol-version"
    /// Envelope flag: the message is the end of the stream.
    static let endStreamFlag: UInt8 = 0x02
    /// Envelope flag: the message is compressed.
    static let compressedFlag: UInt8 = 0x01

    /// Connect's name of a status code (`invalid_argument`; `canceled`, with one l).
    static func codeName(_ code: RPCStatusCode) -> String {
        switch code {
        case .ok: "ok"
        case .cancelled: "canceled"
        case .unknown: "unknown"
        case .invalidArgument: "invalid_argument"
        case .deadlineExceeded: "deadline_exceeded"
        case .notFound: "not_found"
        case .alreadyExists: "already_exists"
        case .permissionDenied: "permission_denied"
        case .resourceExhausted: "resource_exhausted"
        case .failedPrecondition: "failed_precondition"
        case .aborted: "aborted"
        case .outOfRange: "out_of_range"
        case .unimplemented: "unimplemented"
        case .internal: "internal"
        case .unavailable: "unavailable"
        case .dataLoss: "data_loss"
        case .unauthenticated: "unauthenticated"
        }
    }

    /// The HTTP status of a unary error, from Connect's table.
    static func httpStatus(_ code: RPCStatusCode) -> Int {
        switch code {
        case .ok: 200
        case .cancelled: 499
        case .unknown, .internal, .dataLoss: 500
        case .invalidArgument, .failedPrecondition, .outOfRange: 400
        case .deadlineExceeded: 504
        case .notFound: 404
        case .alreadyExists, .aborted: 409
        case .permissionDenied: 403
        case .resourceExhausted: 429
        case .unimplemented: 501
        case .unavailable: 503
        case .unauthenticated: 401
        }
    }

    /// `{"code": …, "message": …, "details": [{"type": …, "value": …}]}`.
    static func errorJSON(_ error: RPCError) -> String {
        var json = "{\"code\":\(JSONText.quoted(codeName(error.code)))"
        if !error.message.isEmpty { json += ",\"message\":\(JSONText.quoted(error.message))" }
        if !error.details.isEmpty {
            let details = error.details.map { detail -> String in
                let type = detail.typeURL.split(separator: "/").last.map(String.init) ?? detail.typeURL
                return "{\"type\":\(JSONText.quoted(type)),\"value\":\(JSONText.quoted(Base64.encode(detail.value)))}"
            }
            json += ",\"details\":[\(details.joined(separator: ","))]"
        }
        return json + "}"
    }

    /// The end-of-stream message: the error, if any, and the trailing metadata.
    static func endOfStreamJSON(error: RPCError?, trailers: Metadata) -> String {
        var parts: [String] = []
        if let error { parts.append("\"error\":\(errorJSON(error))") }
        let metadata = HTTPMetadata.fields(trailers)
        if !metadata.isEmpty {
            var grouped: [(String, [String])] = []
            for (name, value) in metadata {
                if let index = grouped.firstIndex(where: { $0.0 == name }) {
                    grouped[index].1.append(value)
                } else {
                    grouped.append((name, [value]))
                }
            }
            let entries = grouped.map {
                "\(JSONText.quoted($0.0)):[\($0.1.map(JSONText.quoted).joined(separator: ","))]"
            }
            parts.append("\"metadata\":{\(entries.joined(separator: ","))}")
        }
        return "{\(parts.joined(separator: ","))}"
    }

    /// One envelope: flags, a big-endian 32-bit length and the message.
    static func envelope(flags: UInt8, _ message: [UInt8]) -> [UInt8] {
        let count = UInt32(message.count)
        return [flags, UInt8(count >> 24), UInt8(count >> 16 & 0xFF), UInt8(count >> 8 & 0xFF), UInt8(count & 0xFF)]
            + message
    }

    /// The single message of a streaming request body, which must hold exactly one uncompressed envelope.
    static func singleEnvelope(_ body: [UInt8]) throws -> [UInt8] {
        guard body.count >= 5 else { throw RPCError(.invalidArgument, "request: expected one enveloped message") }
        guard body[0] & compressedFlag == 0 else {
            throw RPCError(.unimplemented, "connect-content-encoding: only identity is supported")
        }
        let length = Int(body[1]) << 24 | Int(body[2]) << 16 | Int(body[3]) << 8 | Int(body[4])
        guard body.count == 5 + length else {
            throw RPCError(
                .invalidArgument,
                "request: expected one enveloped message of \(length) bytes, received \(body.count - 5)")
        }
        return Array(body[5...])
    }

    /// `Connect-Timeout-Ms`: at most 10 digits, positive.
    static func timeout(_ text: String) -> Duration? {
        guard (1...10).contains(text.utf8.count), text.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
            let milliseconds = Int64(text), milliseconds > 0
        else { return nil }
        return .milliseconds(milliseconds)
    }
}

/// Metadata as HTTP header fields: binary values base64 (unpadded), as Connect and gRPC send them.
enum HTTPMetadata {
    /// `(name, value)` pairs of `metadata`.
    static func fields(_ metadata: Metadata) -> [(String, String)] {
        metadata.map { entry in
            switch entry.value {
            case .string(let text): (entry.key, text)
            case .binary(let bytes): (entry.key, Base64.encode(bytes))
            }
        }
    }
}
