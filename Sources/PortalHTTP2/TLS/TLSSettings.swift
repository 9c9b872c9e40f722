/// The lowest TLS version a connection may negotiate.
public enum TLSVersion: String, Sendable, CaseIterable {
    /// TLS 1.2, allowed only when asked for.
    case v1_2 = "1.2"
    /// TLS 1.3, the default.
    case v1_3 = "1.3"
}

/// The protocol a TLS server speaks inside TLS.
public enum TLSApplicationProtocol: Sendable, Hashable {
    /// HTTP/2, required by ALPN `h2` (gRPC).
    case http2
    /// HTTP/2 when the client offers `h2`, else HTTP/1.1 (browsers on the web listener).
    case web
}

/// A server's TLS certificate and key, and the CA whose client certificates it asks for.
public struct TLSServerSettings: Sendable, Hashable {
    /// PEM certificate chain: the server's certificate first, then intermediates.
    public var certificateFile: String
    /// PEM private key of the certificate.
    public var keyFile: String
    /// PEM CA certificates that issue client certificates; nil asks for none.
    ///
    /// The handshake completes whatever the client presents; the verdict reaches each call as
    /// `ServerContext.transport`, where `TransportPolicyInterceptor` refuses calls without a valid one.
    public var clientCAFile: String?
    /// The lowest version accepted.
    public var minimumVersion: TLSVersion = .v1_3
    /// The protocol spoken inside TLS, chosen by ALPN: HTTP/2 for gRPC, HTTP/2 or HTTP/1.1 for the web listener.
    public var applicationProtocol: TLSApplicationProtocol = .http2

    /// Settings serving `certificateFile` with `keyFile`.
    public init(certificateFile: String, keyFile: String, clientCAFile: String? = nil) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.clientCAFile = clientCAFile
    }
}

/// How a client verifies the servers it calls, and the certificate it presents to them.
public struct TLSClientSettings: Sendable, Hashable {
    /// PEM CA certificates that issue server certificates.
    public var caFile: String
    /// PEM client certificate chain; nil presents none.
    public var certificateFile: String?
    /// PEM private key of the client certificate.
    public var keyFile: String?
    /// The lowest version accepted.
    public var minimumVersion: TLSVersion = .v1_3

    /// Settings trusting servers whose certificates `caFile` issued.
    public init(caFile: String, certificateFile: String? = nil, keyFile: String? = nil) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }

    /// The files read, for reloading when they change.
    var files: [String] { [caFile] + [certificateFile, keyFile].compactMap { $0 } }
}

extension TLSServerSettings {
    /// The files read, for reloading when they change.
    var files: [String] { [certificateFile, keyFile] + [clientCAFile].compactMap { $0 } }
}

/// A TLS certificate, key or CA file that cannot be used, with the setting and the reason.
public struct TLSConfigurationError: Error, CustomStringConvertible, Sendable {
    /// What is wrong, naming the file.
    public var description: String

    init(_ description: String) {
        self.description = description
    }
}
