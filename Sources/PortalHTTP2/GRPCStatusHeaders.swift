import PortalRPC

/// Converts between RPC errors and the gRPC status headers: `grpc-status`, a percent-encoded
/// `grpc-message`, and `grpc-status-details-bin` carrying a `google.rpc.Status`.
enum GRPCStatusHeaders {
    /// Most UTF-8 bytes of `grpc-message` sent; a longer message is cut and ends with "…".
    static let maxMessageBytes = 1024
    /// Most bytes of trailers sent: well under the smallest common peer limit (grpcio's 8 KiB), so an
    /// error always reaches the caller. Status details, then metadata, are dropped to stay within it.
    static let maxTrailerBytes = 7 << 10
    /// The trailers of a call that succeeded without trailing metadata, the common case.
    private static let ok = [("grpc-status", "0")]

    /// The trailer fields for an error (or OK when `error` is nil) plus extra metadata, within
    /// `maxTrailerBytes`.
    static func trailers(for error: RPCError?, metadata: Metadata) -> [(String, String)] {
        if error == nil, metadata.isEmpty { return ok }
        var fields: [(String, String)] = []
        var extra = HTTP2Metadata.headerFields(metadata)
        if let error {
            fields.append(("grpc-status", String(error.code.rawValue)))
            let message = truncated(error.message, toUTF8Bytes: maxMessageBytes)
            if !message.isEmpty { fields.append(("grpc-message", percentEncode(message))) }
            var details = error.details
            while !details.isEmpty {
                let encoded = encodedDetails(code: error.code, message: message, details: details)
                if size(of: fields) + size(of: [("grpc-status-details-bin", encoded)]) <= maxTrailerBytes {
                    fields.append(("grpc-status-details-bin", encoded))
                    break
                }
                details.removeLast()
            }
            extra = HTTP2Metadata.headerFields(error.metadata) + extra
        } else {
            fields.append(("grpc-status", "0"))
        }
        var used = size(of: fields)
        for field in extra where used + size(of: [field]) <= maxTrailerBytes {
            fields.append(field)
            used += size(of: [field])
        }
        return fields
    }

    /// `message` cut to at most `limit` UTF-8 bytes on a character boundary, ending with "…" when cut.
    static func truncated(_ message: String, toUTF8Bytes limit: Int) -> String {
        guard message.utf8.count > limit else { return message }
        var kept = ""
        var used = 0
        for character in message {
            let bytes = character.utf8.count
            guard used + bytes <= limit - 3 else { break }
            kept.append(character)
            used += bytes
        }
        return kept + "…"
    }

    /// The bytes a header block of `fields` takes (HTTP/2 counts 32 per field beside name and value).
    private static func size(of fields: [(String, String)]) -> Int {
        fields.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 32 }
    }

    private static func encodedDetails(code: RPCStatusCode, message: String, details: [RPCErrorDetail]) -> String {
        Base64.encode(RPCStatusDetails.encode(code: code, message: message, details: details))
    }

    /// The error described by received trailers, or nil for status OK.
    static func error(fromTrailers fields: [(String, String)], metadata: Metadata) -> RPCError? {
        guard let statusText = fields.first(where: { $0.0 == "grpc-status" })?.1, let code = Int(statusText) else {
            return RPCError(.internal, "response ended without grpc-status", metadata: metadata)
        }
        let status = RPCStatusCode(wireValue: code)
        if status == .ok { return nil }
        let message = fields.first(where: { $0.0 == "grpc-message" }).map { percentDecode($0.1) } ?? ""
        var details: [RPCErrorDetail] = []
        if let encoded = fields.first(where: { $0.0 == "grpc-status-details-bin" })?.1,
            let decoded = RPCStatusDetails.decodeDetails(Base64.decode(encoded))
        {
            details = decoded
        }
        return RPCError(status, message, details: details, metadata: metadata)
    }

    /// Percent-encodes every byte outside printable ASCII, and `%` itself, as the gRPC spec asks.
    static func percentEncode(_ message: String) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(message.utf8.count)
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in message.utf8 {
            if byte >= 0x20 && byte <= 0x7E && byte != UInt8(ascii: "%") {
                output.append(byte)
            } else {
                output += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Reverses `percentEncode`, leaving malformed escapes as they are.
    static func percentDecode(_ text: String) -> String {
        let bytes = Array(text.utf8)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count,
                let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
            {
                output.append(high << 4 | low)
                index += 3
            } else {
                output.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// The value of one hexadecimal digit, nil for any other byte.
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Converts between `Metadata` and HTTP/2 header fields.
enum HTTP2Metadata {
    /// Header names the transport owns; they never appear in call metadata.
    static let reservedNames: [StaticString] = [
        "content-type", "te", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "grpc-status",
        "grpc-message", "grpc-status-details-bin", "content-length", "connection", "host",
    ]
    /// `reservedNames` as strings, for metadata built from strings.
    static let reserved = Set(reservedNames.map { "\($0)" })

    /// Header fields for metadata; binary values are base64 without padding.
    static func headerFields(_ metadata: Metadata) -> [(String, String)] {
        metadata.compactMap { entry in
            guard !reserved.contains(entry.key), !entry.key.hasPrefix(":") else { return nil }
            switch entry.value {
            case .string(let value): return (entry.key, value)
            case .binary(let value): return (entry.key, Base64.encode(value))
            }
        }
    }

    /// Metadata from received header fields, skipping pseudo-headers and transport headers.
    static func metadata(from fields: [(String, String)]) -> Metadata {
        var metadata = Metadata()
        for (name, value) in fields where !name.hasPrefix(":") && !reserved.contains(name) {
            if name.hasSuffix("-bin") {
                metadata.addBinary(Base64.decode(value), forKey: name)
            } else {
                metadata.addString(value, forKey: name)
            }
        }
        return metadata
    }
}
