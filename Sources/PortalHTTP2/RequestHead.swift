import PortalRPC

/// The request header block of one call, read field by field as nghttp2 decodes it.
///
/// Header blocks never interleave on an HTTP/2 connection, so a connection keeps one of these at a
/// time. Transport headers are recognised from their bytes; only call metadata becomes strings.
struct RequestHead {
    /// `:method` was POST.
    var isPost = false
    /// `:path`, for example `/grpc.health.v1.Health/Check`.
    var path = ""
    /// `content-type` started with `application/grpc`.
    var isGRPC = false
    /// `grpc-timeout`, unparsed.
    var timeout: String?
    /// `grpc-encoding`, unparsed.
    var encoding: String?
    /// The client's `x-request-id`, if any.
    var requestID: String?
    /// Every other field, as call metadata.
    var metadata = Metadata()
    /// Bytes counted against the header list limit (name + value + 32 per field, as HTTP/2 counts).
    var size = 0
    /// Every regular field as text, kept only on web listeners (nil elsewhere), for plain HTTP requests.
    var fields: [(String, String)]?
    /// `:method`, kept with `fields`.
    var method = ""
    /// `:authority`, kept with `fields`.
    var authority = ""

    /// A head that keeps every field as text when `keepingFields` (web listeners).
    init(keepingFields: Bool = false) {
        fields = keepingFields ? [] : nil
    }

    /// Records one field.
    mutating func add(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        size += name.count + value.count + 32
        if fields != nil {
            if name.matches(":method") {
                method = String(decoding: value, as: UTF8.self)
            } else if name.matches(":authority") {
                authority = String(decoding: value, as: UTF8.self)
            } else if name.first != UInt8(ascii: ":") {
                fields!.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
            }
        }
        if name.first == UInt8(ascii: ":") {
            if name.matches(":method") {
                isPost = value.matches("POST")
            } else if name.matches(":path") {
                path = String(decoding: value, as: UTF8.self)
            }
            return
        }
        if name.matches("content-type") {
            isGRPC = value.starts(with: "application/grpc")
        } else if name.matches("te") || name.matches("grpc-accept-encoding") {
            return
        } else if name.matches("grpc-timeout") {
            timeout = String(decoding: value, as: UTF8.self)
        } else if name.matches("grpc-encoding") {
            encoding = String(decoding: value, as: UTF8.self)
        } else if !name.isReservedHeader {
            let key = String(decoding: name, as: UTF8.self)
            if key.hasSuffix("-bin") {
                metadata.addBinary(Base64.decode(String(decoding: value, as: UTF8.self)), forKey: key)
            } else {
                let text = String(decoding: value, as: UTF8.self)
                if key == "x-request-id" { requestID = text }
                metadata.addString(text, forKey: key)
            }
        }
    }
}

extension UnsafeRawBufferPointer {
    /// Whether the bytes name a header the transport owns (`HTTP2Metadata.reservedNames`): such
    /// fields never become call metadata. Compared as bytes, so no string is made to ask.
    fileprivate var isReservedHeader: Bool {
        HTTP2Metadata.reservedNames.contains { matches($0) }
    }

    /// Whether the bytes equal `literal`.
    func matches(_ literal: StaticString) -> Bool {
        count == literal.utf8CodeUnitCount && starts(with: literal)
    }

    /// Whether the bytes begin with `literal`.
    func starts(with literal: StaticString) -> Bool {
        guard count >= literal.utf8CodeUnitCount else { return false }
        return literal.withUTF8Buffer { prefix in
            prefix.indices.allSatisfy { self[$0] == prefix[$0] }
        }
    }
}
