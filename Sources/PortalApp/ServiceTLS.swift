import Logging
import PortalHTTP2
import PortalRPC

/// A service's TLS: the certificate it serves and presents, the CAs it trusts, what it asks of callers.
public struct ServiceTLS: Sendable {
    /// PEM certificate chain served to callers and presented to the services this one calls.
    public var certificateFile: String
    /// PEM private key of the certificate.
    public var keyFile: String
    /// CA whose client certificates every call but health checks must present; nil asks for none.
    public var clientCAFile: String?
    /// CA that verifies the services this one calls; nil calls them in cleartext.
    public var caFile: String?
    /// The lowest TLS version accepted, both ways.
    public var minimumVersion: TLSVersion = .v1_3
    /// The DNS name in the gateway's client certificate: only it may pass principal metadata.
    public var gatewayIdentity = "gateway"

    /// TLS serving `certificateFile` with `keyFile`.
    public init(certificateFile: String, keyFile: String) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }

    /// The server side; throws naming the file that cannot be used.
    func serverSource(logger: Logger) throws -> TLSContextSource {
        var settings = TLSServerSettings(certificateFile: certificateFile, keyFile: keyFile, clientCAFile: clientCAFile)
        settings.minimumVersion = minimumVersion
        return try .server(settings, logger: logger)
    }

    /// The web listener's side: the same certificate, HTTP/2 or HTTP/1.1 inside, no client certificates asked.
    func webSource(logger: Logger) throws -> TLSContextSource {
        var settings = TLSServerSettings(certificateFile: certificateFile, keyFile: keyFile)
        settings.minimumVersion = minimumVersion
        settings.applicationProtocol = .web
        return try .server(settings, logger: logger)
    }

    /// The client side for calls to other services (presenting this certificate), or nil for cleartext calls.
    func clientSource(logger: Logger) throws -> TLSContextSource? {
        guard let caFile else { return nil }
        var settings = TLSClientSettings(caFile: caFile, certificateFile: certificateFile, keyFile: keyFile)
        settings.minimumVersion = minimumVersion
        return try .client(settings, logger: logger)
    }

    /// What the server asks of each call's connection.
    var policy: TransportPolicyInterceptor {
        TransportPolicyInterceptor(requireClientCertificate: clientCAFile != nil, gatewayIdentity: gatewayIdentity)
    }
}
